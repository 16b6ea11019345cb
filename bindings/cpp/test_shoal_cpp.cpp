// Tests of the C++ wrapper against a real shoald.
//
//   test_shoal_cpp [--shoald PATH] [TEST-NAME...]
//
// Every test starts its own daemon (unique domain, private runtime dir) and
// stops it with SIGTERM. The request/response test forks a second process
// that re-executes this binary in server mode (--serve DOMAIN DIR COUNT).
#include <shoal.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#ifndef SHOALD_PATH
#define SHOALD_PATH "shoald"
#endif

using namespace std::chrono_literals;

namespace {

std::string g_shoald = SHOALD_PATH;

struct TestFailure {
    std::string what;
};

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond))                                                                              \
            throw TestFailure{std::string(__FILE__) + ":" + std::to_string(__LINE__) +            \
                              ": CHECK(" #cond ") failed"};                                       \
    } while (0)

// Evaluates `expr`, which must throw shoal::Error with code `code`.
#define CHECK_THROWS(expr, code)                                                                  \
    do {                                                                                          \
        bool thrown_ = false;                                                                     \
        try {                                                                                     \
            (void)(expr);                                                                         \
        } catch (const shoal::Error &e_) {                                                        \
            thrown_ = true;                                                                       \
            if (e_.errc() != (code))                                                              \
                throw TestFailure{std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + \
                                  #expr " threw the wrong code: " + e_.what()};                   \
        }                                                                                         \
        if (!thrown_)                                                                             \
            throw TestFailure{std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " +     \
                              #expr " did not throw"};                                            \
    } while (0)

// ---- a real daemon per test ---------------------------------------------------------

class Daemon {
public:
    Daemon() {
        static std::atomic<int> counter{0};
        char tmpl[] = "/tmp/shoal-cpptest-XXXXXX";
        if (!mkdtemp(tmpl)) throw TestFailure{"mkdtemp failed"};
        dir_ = tmpl;
        domain_ = "cpptest-" + std::to_string(getpid()) + "-" + std::to_string(counter++);

        int fds[2];
        if (pipe(fds) != 0) throw TestFailure{"pipe failed"};
        const std::string fd_arg = std::to_string(fds[1]);
        pid_ = fork();
        if (pid_ < 0) throw TestFailure{"fork failed"};
        if (pid_ == 0) {
            close(fds[0]);
            execl(g_shoald.c_str(), g_shoald.c_str(), "--domain", domain_.c_str(), "--runtime-dir",
                  dir_.c_str(), "--log-level", "warn", "--ready-fd", fd_arg.c_str(),
                  static_cast<char *>(nullptr));
            std::fprintf(stderr, "exec %s: %s\n", g_shoald.c_str(), std::strerror(errno));
            _exit(127);
        }
        close(fds[1]);
        std::string got;
        pollfd p{fds[0], POLLIN, 0};
        while (got.find('\n') == std::string::npos && poll(&p, 1, 10000) > 0) {
            char buf[64];
            const ssize_t n = read(fds[0], buf, sizeof buf);
            if (n <= 0) break;
            got.append(buf, static_cast<size_t>(n));
        }
        close(fds[0]);
        if (got != "ready\n") {
            stop();
            throw TestFailure{"shoald (" + g_shoald + ") did not report ready, got '" + got + "'"};
        }
    }
    Daemon(const Daemon &) = delete;
    Daemon &operator=(const Daemon &) = delete;
    ~Daemon() {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    // SIGTERM and wait; returns the exit status (or -1).
    int stop() {
        if (pid_ <= 0) return status_;
        kill(pid_, SIGTERM);
        int st = 0;
        if (waitpid(pid_, &st, 0) == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        pid_ = -1;
        return status_;
    }

    shoal::RuntimeOptions options() const {
        shoal::RuntimeOptions o;
        o.domain = domain_;
        o.runtime_dir = dir_;
        o.connect_timeout = 5s;
        return o;
    }
    const std::string &domain() const { return domain_; }
    const std::string &dir() const { return dir_; }

private:
    std::string dir_;
    std::string domain_;
    pid_t pid_ = -1;
    int status_ = -1;
};

template <class Pred> bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

struct Point {
    double x;
    double y;
    uint32_t id;
};

// ---- server role (runs in the forked child) ---------------------------------------

// Answers `count` requests: an 8-byte request v gets 2*v+1, anything else is
// echoed upper-cased.
int serve(const std::string &domain, const std::string &dir, int count) {
    try {
        shoal::RuntimeOptions o;
        o.domain = domain;
        o.runtime_dir = dir;
        o.connect_timeout = 5s;
        shoal::Runtime rt("cpp-test-server", o);
        shoal::Server server(rt, "cpptest/service");
        for (int i = 0; i < count; ++i) {
            std::optional<shoal::Request> req = server.take(10s);
            if (!req) {
                std::fprintf(stderr, "server: no request %d within 10 s\n", i);
                return 3;
            }
            if (req->size() == sizeof(uint64_t)) {
                shoal::Loan resp = server.loan_response(*req, sizeof(uint64_t));
                resp.emplace<uint64_t>(req->as<uint64_t>() * 2 + 1);
                server.send(std::move(resp));
            } else {
                std::string text(req->text());
                for (char &c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                server.respond_copy(*req, text);
            }
        }
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "server: %s\n", e.what());
        return 2;
    }
}

// ---- tests ---------------------------------------------------------------------------

void test_types() {
    using namespace shoal;
    static_assert(!std::is_copy_constructible_v<Runtime> && !std::is_copy_assignable_v<Runtime>);
    static_assert(!std::is_copy_constructible_v<Publisher> && !std::is_copy_constructible_v<Subscriber>);
    static_assert(!std::is_copy_constructible_v<Client> && !std::is_copy_constructible_v<Server>);
    static_assert(!std::is_copy_constructible_v<WaitSet>);
    static_assert(!std::is_copy_constructible_v<Loan> && !std::is_copy_assignable_v<Loan>);
    static_assert(!std::is_copy_constructible_v<Sample> && !std::is_copy_constructible_v<Request> &&
                  !std::is_copy_constructible_v<Response>);
    static_assert(std::is_nothrow_move_constructible_v<Runtime> &&
                  std::is_nothrow_move_assignable_v<Runtime>);
    static_assert(std::is_nothrow_move_constructible_v<Publisher> &&
                  std::is_nothrow_move_constructible_v<Subscriber> &&
                  std::is_nothrow_move_constructible_v<Client> &&
                  std::is_nothrow_move_constructible_v<Server> &&
                  std::is_nothrow_move_constructible_v<WaitSet>);
    static_assert(std::is_nothrow_move_constructible_v<Loan> && std::is_nothrow_move_assignable_v<Loan>);
    static_assert(std::is_nothrow_move_constructible_v<Sample> &&
                  std::is_nothrow_move_assignable_v<Response>);
    static_assert(std::is_base_of_v<std::runtime_error, Error>);

    CHECK(Timeout(0s).ns() == SHOAL_TIMEOUT_POLL);
    CHECK(Timeout(-5ms).ns() == SHOAL_TIMEOUT_POLL);
    CHECK(Timeout(1500us).ns() == 1500000);
    CHECK(Timeout(std::chrono::duration<double>(0.25)).ns() == 250000000);
    CHECK(Timeout(std::chrono::hours::max()).is_forever());
    CHECK(forever.ns() == SHOAL_TIMEOUT_FOREVER);
    CHECK(no_wait.ns() == SHOAL_TIMEOUT_POLL);
    CHECK(version() == shoal_version());
}

void test_errors() {
    // No daemon on this domain: a typed exception with the C detail.
    {
        char tmpl[] = "/tmp/shoal-cpptest-none-XXXXXX";
        CHECK(mkdtemp(tmpl) != nullptr);
        shoal::RuntimeOptions o;
        o.domain = "cpptest-nobody-" + std::to_string(getpid());
        o.runtime_dir = tmpl;
        try {
            shoal::Runtime rt("cpp-test", o);
            CHECK(!"Runtime without a daemon must throw");
        } catch (const shoal::Error &e) {
            CHECK(e.errc() == shoal::Errc::daemon_unavailable);
            CHECK(e.code() == SHOAL_ERR_DAEMON_UNAVAILABLE);
            CHECK(!e.detail().empty());
            CHECK(e.detail().find(o.domain) != std::string::npos);
            CHECK(std::string(e.what()).find(e.detail()) != std::string::npos);
        }
        rmdir(tmpl);
    }

    Daemon d;
    shoal::Runtime rt("cpp-test", d.options());
    CHECK(rt.domain() == d.domain());
    const shoal::DomainInfo info = rt.domain_info();
    CHECK(std::string(info.domain) == d.domain());
    CHECK(info.servers >= 512 && info.processes > 0);
    bool me = false;
    for (const shoal::ProcessInfo &p : rt.processes())
        me = me || (p.pid == getpid() && std::string(p.name) == "cpp-test");
    CHECK(me);
    shoal::Publisher pub(rt, "cpptest/errors");
    shoal::Client client(rt, "cpptest/errors-service");

    CHECK_THROWS(pub.loan(0), shoal::Errc::invalid_argument);
    CHECK_THROWS(pub.loan(std::size_t{1} << 40), shoal::Errc::chunk_too_large);
    CHECK_THROWS(shoal::Publisher(rt, std::string(200, 'x')), shoal::Errc::invalid_argument);

    // No server: a call fails with a code, and the request is consumed.
    CHECK(client.server_count() == 0);
    CHECK_THROWS(client.call_copy("ping", 100ms), shoal::Errc::no_server);
    CHECK(rt.chunks_in_use() == 0);

    // A loan handed to a port that does not own it: wrong_port, and consumed.
    shoal::Loan loan = pub.loan(16);
    CHECK(rt.chunks_in_use() == 1);
    CHECK_THROWS(client.send(std::move(loan)), shoal::Errc::wrong_port);
    CHECK(!loan);
    CHECK(rt.chunks_in_use() == 0);

    // publish() on a request loan is refused before reaching C; the loan stays.
    shoal::Loan req = client.loan(8);
    CHECK_THROWS(req.publish(), shoal::Errc::invalid_argument);
    CHECK(req);
    CHECK_THROWS(req.as<Point>(), shoal::Errc::invalid_argument); // 8 < sizeof(Point)
    CHECK_THROWS(req.assign(std::string(100, 'y')), shoal::Errc::invalid_argument);
    req.release();
    CHECK(!req);
    CHECK(rt.chunks_in_use() == 0);

    // Empty objects throw instead of crashing.
    CHECK_THROWS(req.size(), shoal::Errc::invalid_argument);
    shoal::Publisher moved = std::move(pub);
    CHECK(!pub && moved);
    CHECK_THROWS(pub.loan(8), shoal::Errc::invalid_argument);
    shoal::Runtime rt2 = std::move(rt);
    CHECK_THROWS(rt.domain(), shoal::Errc::invalid_argument);
    CHECK_THROWS(shoal::Subscriber(rt, "cpptest/errors"), shoal::Errc::invalid_argument);
    CHECK(rt2.domain() == d.domain());
}

// ignore_own_process: this process's samples and servers are skipped by the
// ports that ask for it, seen by the others.
void test_ignore_own_process() {
    Daemon d;
    shoal::Runtime rt("cpp-own", d.options());
    shoal::SubscriberOptions so;
    so.ignore_own_process = true;
    shoal::Subscriber deaf(rt, "cpptest/own", so);
    shoal::Subscriber plain(rt, "cpptest/own");
    shoal::Publisher pub = rt.publisher("cpptest/own");
    pub.publish_copy("mine");
    CHECK(plain.take(1s));
    CHECK(!deaf.take(50ms));

    shoal::Server server(rt, "cpptest/own-svc");
    shoal::ClientOptions co;
    co.ignore_own_process = true;
    shoal::Client deaf_client(rt, "cpptest/own-svc", co);
    shoal::Client plain_client(rt, "cpptest/own-svc");
    CHECK(plain_client.server_count() == 1);
    CHECK(deaf_client.server_count() == 0);
    CHECK_THROWS(deaf_client.call_copy("x", 1s), shoal::Errc::no_server);
}

void test_pubsub() {
    Daemon d;
    shoal::Runtime rt("cpp-test", d.options());
    shoal::Subscriber sub(rt, "cpptest/points");
    shoal::Publisher pub = rt.publisher("cpptest/points");
    CHECK(eventually([&] { return pub.subscriber_count() == 1; }));

    CHECK(!sub.try_take());
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(!sub.take(50ms));
    CHECK(std::chrono::steady_clock::now() - t0 >= 40ms);

    {
        shoal::Loan loan = pub.loan(sizeof(Point));
        CHECK(loan.size() == sizeof(Point));
        CHECK(loan.kind() == shoal::Loan::Kind::sample);
        loan.emplace<Point>(Point{1.5, -2.0, 7});
        loan.publish();
        CHECK(!loan);
    }
    {
        std::optional<shoal::Sample> s = sub.take(1s);
        CHECK(s);
        CHECK(s->size() == sizeof(Point));
        const Point &p = s->as<Point>();
        CHECK(p.x == 1.5 && p.y == -2.0 && p.id == 7);
        CHECK(s->bytes().size() == sizeof(Point));
    }

    // Shrinking with assign(); publish through the port; copy helper.
    shoal::Loan text = pub.loan(64);
    text.assign("hello, shoal");
    pub.publish(std::move(text));
    pub.publish_copy("second");
    std::optional<shoal::Sample> a = sub.take(1s);
    std::optional<shoal::Sample> b = sub.take(1s);
    CHECK(a && b);
    CHECK(a->text() == "hello, shoal");
    CHECK(a->size() == 12);
    CHECK(b->text() == "second");
    CHECK(b->sequence_id() > a->sequence_id());
    CHECK(static_cast<char>(b->bytes()[0]) == 's');
    CHECK(b->bytes().subspan(3).text() == "ond");

    // Zero copy: the sample shows the publisher's bytes, byte for byte, at size.
    std::vector<unsigned char> big(60000);
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<unsigned char>(i * 31);
    pub.publish_copy(big.data(), big.size());
    std::optional<shoal::Sample> c = sub.take(1s);
    CHECK(c && c->size() == big.size());
    CHECK(std::memcmp(c->data(), big.data(), big.size()) == 0);

    // Two subscribers share one chunk; it is freed after both release it.
    shoal::Subscriber sub2(rt, "cpptest/points");
    CHECK(eventually([&] { return pub.subscriber_count() == 2; }));
    a.reset();
    b.reset();
    c.reset();
    CHECK(rt.chunks_in_use() == 0);
    pub.publish_copy("shared");
    std::optional<shoal::Sample> s1 = sub.take(1s);
    std::optional<shoal::Sample> s2 = sub2.take(1s);
    CHECK(s1 && s2 && s1->text() == "shared" && s2->text() == "shared");
    CHECK(rt.chunks_in_use() == 1);
    s1.reset();
    CHECK(rt.chunks_in_use() == 1);
    s2.reset();
    CHECK(rt.chunks_in_use() == 0);
}

void test_move_and_release() {
    Daemon d;
    shoal::Runtime rt("cpp-test", d.options());
    shoal::Publisher pub(rt, "cpptest/move");
    shoal::Subscriber sub(rt, "cpptest/move");
    CHECK(eventually([&] { return pub.subscriber_count() == 1; }));
    CHECK(rt.chunks_in_use() == 0);

    // A loan that is never sent is released by its destructor.
    {
        shoal::Loan loan = pub.loan(100);
        CHECK(rt.chunks_in_use() == 1);
    }
    CHECK(rt.chunks_in_use() == 0);

    // Moving transfers ownership; move-assigning releases what was held.
    {
        shoal::Loan a = pub.loan(8);
        shoal::Loan b = std::move(a);
        CHECK(!a && b);
        CHECK(rt.chunks_in_use() == 1);
        b = pub.loan(8);
        CHECK(rt.chunks_in_use() == 1);
        shoal::Loan c = pub.loan(8);
        CHECK(rt.chunks_in_use() == 2);
        c = std::move(b);
        CHECK(rt.chunks_in_use() == 1);
        std::vector<shoal::Loan> loans;
        loans.push_back(std::move(c));
        for (int i = 0; i < 5; ++i) loans.push_back(pub.loan(8)); // reallocation moves them
        CHECK(rt.chunks_in_use() == 6);
    }
    CHECK(rt.chunks_in_use() == 0);

    // Taken samples are released by their destructor, in containers too.
    {
        for (int i = 0; i < 4; ++i) pub.publish_copy("x");
        std::vector<shoal::Sample> samples;
        while (std::optional<shoal::Sample> s = sub.take(200ms)) samples.push_back(std::move(*s));
        CHECK(samples.size() == 4);
        CHECK(rt.chunks_in_use() == 4);
        samples.erase(samples.begin());
        CHECK(rt.chunks_in_use() == 3);
        shoal::Sample kept = std::move(samples.back());
        samples.clear();
        CHECK(rt.chunks_in_use() == 1);
        CHECK(kept.text() == "x");
    }
    CHECK(rt.chunks_in_use() == 0);

    // A guard keeps its port alive: the Publisher object can go first.
    {
        std::optional<shoal::Loan> loan;
        {
            shoal::Publisher temp(rt, "cpptest/temp");
            loan = temp.loan(32);
        }
        loan->assign("still valid");
        CHECK(loan->bytes().text() == "still valid");
        CHECK(rt.chunks_in_use() == 1);
        loan.reset();
        CHECK(rt.chunks_in_use() == 0);
    }

    // Moving ports keeps them working.
    shoal::Publisher pub2 = std::move(pub);
    shoal::Subscriber sub2 = std::move(sub);
    pub2.publish_copy("after move");
    std::optional<shoal::Sample> s = sub2.take(1s);
    CHECK(s && s->text() == "after move");
    s.reset();
    CHECK(rt.chunks_in_use() == 0);

    // Ports keep the runtime alive; nothing is held once all are gone.
    {
        shoal::Runtime rt_b("cpp-test-b", d.options());
        shoal::Subscriber sub_b(rt_b, "cpptest/move");
        CHECK(eventually([&] { return pub2.subscriber_count() == 2; }));
        shoal::Runtime gone = std::move(rt_b);
        { shoal::Runtime drop = std::move(gone); }
        pub2.publish_copy("runtime object gone, port alive");
        std::optional<shoal::Sample> sb = sub_b.take(1s);
        CHECK(sb && sb->text() == "runtime object gone, port alive");
        std::optional<shoal::Sample> sa = sub2.take(1s);
        CHECK(sa);
    }
    CHECK(eventually([&] { return pub2.subscriber_count() == 1; }));
    CHECK(rt.chunks_in_use() == 0);
}

void test_request_response_processes() {
    Daemon d;
    const int n_numbers = 50;
    const int n_texts = 3;
    const int n_sends = 5;

    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        const std::string count = std::to_string(n_numbers + n_texts + n_sends);
        execl("/proc/self/exe", "test_shoal_cpp", "--serve", d.domain().c_str(), d.dir().c_str(),
              count.c_str(), static_cast<char *>(nullptr));
        _exit(127);
    }

    shoal::Runtime rt("cpp-test-client", d.options());
    shoal::Client client(rt, "cpptest/service");
    CHECK(eventually([&] { return client.server_count() == 1; }, 10000ms));

    for (uint64_t i = 0; i < n_numbers; ++i) {
        shoal::Loan req = client.loan(sizeof(uint64_t));
        CHECK(req.kind() == shoal::Loan::Kind::request);
        req.as<uint64_t>() = i;
        std::optional<shoal::Response> resp = client.call(std::move(req), 5s);
        CHECK(!req);
        CHECK(resp);
        CHECK(resp->size() == sizeof(uint64_t));
        CHECK(resp->as<uint64_t>() == 2 * i + 1);
    }
    for (const char *word : {"zero", "copy", "ipc"}) {
        std::optional<shoal::Response> resp = client.call_copy(word, 5s);
        CHECK(resp);
        std::string upper(word);
        for (char &ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        CHECK(resp->text() == upper);
    }

    // send() + take(): the response carries the request's sequence id.
    std::vector<uint64_t> seqs;
    for (int i = 0; i < n_sends; ++i) {
        shoal::Loan req = client.loan(sizeof(uint64_t));
        req.emplace<uint64_t>(1000 + static_cast<uint64_t>(i));
        seqs.push_back(client.send(std::move(req)));
    }
    for (int i = 0; i < n_sends; ++i) {
        std::optional<shoal::Response> resp = client.take(5s);
        CHECK(resp);
        CHECK(resp->sequence_id() == seqs[static_cast<size_t>(i)]);
        CHECK(resp->as<uint64_t>() == 2 * (1000 + static_cast<uint64_t>(i)) + 1);
    }
    CHECK(!client.try_take());

    int st = 0;
    CHECK(waitpid(child, &st, 0) == child);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(eventually([&] { return client.server_count() == 0; }));
    CHECK(eventually([&] { return rt.chunks_in_use() == 0; }));
    // The daemon stops cleanly.
    CHECK(d.stop() == 0);
}

void test_request_response_threads() {
    Daemon d;
    shoal::Runtime rt("cpp-test", d.options());
    shoal::Server server(rt, "cpptest/threads");
    shoal::Client client(rt, "cpptest/threads");
    CHECK(eventually([&] { return client.server_count() == 1; }));

    std::thread worker([&server] {
        for (int i = 0; i < 100; ++i) {
            std::optional<shoal::Request> req = server.take(5s);
            if (!req) return;
            shoal::Loan resp = server.loan_response(*req, sizeof(uint64_t));
            resp.as<uint64_t>() = req->as<uint64_t>() + 1;
            resp.send();
        }
    });
    for (uint64_t i = 0; i < 100; ++i) {
        shoal::Loan req = client.loan(sizeof(uint64_t));
        req.as<uint64_t>() = i;
        std::optional<shoal::Response> resp = client.call(std::move(req), 5s);
        CHECK(resp && resp->as<uint64_t>() == i + 1);
    }
    worker.join();
    CHECK(rt.chunks_in_use() == 0);

    // The server answers after the client is gone: client_gone.
    std::optional<shoal::Client> gone(std::in_place, rt, "cpptest/threads");
    shoal::Loan req = gone->loan(8);
    req.as<uint64_t>() = 1;
    gone->send(std::move(req));
    std::optional<shoal::Request> taken = server.take(1s);
    CHECK(taken);
    gone.reset();
    CHECK_THROWS(server.loan_response(*taken, 8), shoal::Errc::client_gone);
    taken.reset();
    CHECK(rt.chunks_in_use() == 0);
}

void test_waitset() {
    Daemon d;
    shoal::Runtime rt("cpp-test", d.options());
    shoal::Publisher pub(rt, "cpptest/ws-a");
    shoal::Subscriber sub_a(rt, "cpptest/ws-a");
    shoal::Server server(rt, "cpptest/ws-service");
    shoal::Client client(rt, "cpptest/ws-service");
    CHECK(eventually([&] { return pub.subscriber_count() == 1 && client.server_count() == 1; }));

    shoal::WaitSet ws(rt);
    ws.attach(sub_a, 1);
    ws.attach(server, 2);
    CHECK(ws.wait(20ms).empty());

    pub.publish_copy("a");
    std::vector<uint64_t> ready = ws.wait(1s);
    CHECK(ready.size() == 1 && ready[0] == 1);

    const int fd = ws.fd();
    CHECK(fd >= 0);
    pollfd p{fd, POLLIN, 0};
    CHECK(::poll(&p, 1, 1000) == 1);

    CHECK(sub_a.take(shoal::no_wait).has_value());
    client.send(client.loan(4));
    ready = ws.wait(1s);
    CHECK(ready.size() == 1 && ready[0] == 2);
    CHECK(server.take(1s).has_value());

    ws.detach(1);
    pub.publish_copy("b");
    CHECK(ws.wait(50ms).empty());
    CHECK(sub_a.take(1s).has_value());
    CHECK(rt.chunks_in_use() == 0);
}

struct Test {
    const char *name;
    void (*fn)();
};

const Test kTests[] = {
    {"types", test_types},
    {"errors", test_errors},
    {"pubsub", test_pubsub},
    {"ignore_own_process", test_ignore_own_process},
    {"move_and_release", test_move_and_release},
    {"request_response_processes", test_request_response_processes},
    {"request_response_threads", test_request_response_threads},
    {"waitset", test_waitset},
};

} // namespace

int main(int argc, char **argv) {
    std::vector<std::string> only;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--serve" && i + 3 < argc) return serve(argv[i + 1], argv[i + 2], std::atoi(argv[i + 3]));
        if (a == "--shoald" && i + 1 < argc) {
            g_shoald = argv[++i];
            continue;
        }
        only.push_back(a);
    }
    signal(SIGPIPE, SIG_IGN);

    int failed = 0, run = 0;
    for (const Test &t : kTests) {
        if (!only.empty() && std::find(only.begin(), only.end(), t.name) == only.end()) continue;
        ++run;
        try {
            t.fn();
            std::printf("PASS %s\n", t.name);
        } catch (const TestFailure &f) {
            ++failed;
            std::printf("FAIL %s: %s\n", t.name, f.what.c_str());
        } catch (const std::exception &e) {
            ++failed;
            std::printf("FAIL %s: unexpected exception: %s\n", t.name, e.what());
        }
        std::fflush(stdout);
    }
    std::printf("%d of %d tests passed\n", run - failed, run);
    return failed == 0 && run > 0 ? 0 : 1;
}
