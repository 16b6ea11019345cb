// shoal.hpp - header-only C++17 wrapper over the shoal C ABI (shoal.h).
//
// Ownership in one paragraph
//   Runtime, Publisher, Subscriber, Client, Server and WaitSet are move-only
//   owners of their C handle. Chunks are move-only guards: a Loan is released by
//   its destructor unless it was sent or published (send()/publish() consume it,
//   on success and on failure, exactly like the C functions); a Sample, Request
//   or Response is released by its destructor. A guard keeps its port (and a
//   port keeps its runtime) alive, so destroying a Publisher while one of its
//   Loans is still alive is safe: the C port is destroyed when the last guard
//   goes. A moved-from object is empty; using it throws shoal::Error
//   (invalid_argument).
//
// Errors
//   Every failing C call becomes a shoal::Error carrying the result code and the
//   per-thread detail from shoal_last_error_message().
//
// Timeouts
//   Every wait takes a shoal::Timeout, built from any std::chrono duration
//   (negative means "do not wait", durations too long for int64 nanoseconds
//   mean forever) or the constants shoal::no_wait and shoal::forever.
//   Takes that time out are not errors: take()/call() return std::optional and
//   an empty optional means "nothing arrived in time"; WaitSet::wait() returns
//   an empty vector. Every other failure throws.
//
// Threads
//   As in C: a port is used by one thread at a time; different ports may be
//   used concurrently. Using or destroying a guard counts as a use of its
//   port (a release updates the port's bookkeeping), so keep a port and its
//   guards on one thread at a time. Runtime functions are thread-safe.
#ifndef SHOAL_HPP
#define SHOAL_HPP

#include <shoal.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace shoal {

// ---- errors ------------------------------------------------------------------

enum class Errc : int {
    ok = SHOAL_OK,
    invalid_argument = SHOAL_ERR_INVALID_ARGUMENT,
    timeout = SHOAL_ERR_TIMEOUT,
    pool_exhausted = SHOAL_ERR_POOL_EXHAUSTED,
    chunk_too_large = SHOAL_ERR_CHUNK_TOO_LARGE,
    port_limit = SHOAL_ERR_PORT_LIMIT,
    held_limit = SHOAL_ERR_HELD_LIMIT,
    queue_full = SHOAL_ERR_QUEUE_FULL,
    daemon_unavailable = SHOAL_ERR_DAEMON_UNAVAILABLE,
    version_mismatch = SHOAL_ERR_VERSION_MISMATCH,
    permission = SHOAL_ERR_PERMISSION,
    no_server = SHOAL_ERR_NO_SERVER,
    server_gone = SHOAL_ERR_SERVER_GONE,
    client_gone = SHOAL_ERR_CLIENT_GONE,
    corrupt = SHOAL_ERR_CORRUPT,
    no_memory = SHOAL_ERR_NO_MEMORY,
    system = SHOAL_ERR_SYSTEM,
    wrong_port = SHOAL_ERR_WRONG_PORT,
    process_limit = SHOAL_ERR_PROCESS_LIMIT,
    service_limit = SHOAL_ERR_SERVICE_LIMIT,
    already_exists = SHOAL_ERR_ALREADY_EXISTS,
    not_found = SHOAL_ERR_NOT_FOUND,
    busy = SHOAL_ERR_BUSY,
};

class Error : public std::runtime_error {
public:
    Error(shoal_result_t code, std::string detail)
        : std::runtime_error(compose(code, detail)), code_(code), detail_(std::move(detail)) {}

    // The C result code and its C++ enum.
    shoal_result_t code() const noexcept { return code_; }
    Errc errc() const noexcept { return static_cast<Errc>(code_); }
    // The detail message (which limit, which pool, ...); what() is
    // "<shoal_strerror(code)>: <detail>".
    const std::string &detail() const noexcept { return detail_; }

private:
    static std::string compose(shoal_result_t code, const std::string &detail) {
        const char *name = shoal_strerror(code);
        std::string s = name ? name : "shoal error";
        if (!detail.empty()) {
            s += ": ";
            s += detail;
        }
        return s;
    }

    shoal_result_t code_;
    std::string detail_;
};

namespace detail {

// Reads the per-thread detail at once: any later shoal call may overwrite it.
inline Error last_error(shoal_result_t r) {
    const char *msg = shoal_last_error_message();
    return Error(r, msg ? msg : "");
}

inline void check(shoal_result_t r) {
    if (r != SHOAL_OK) throw last_error(r);
}

[[noreturn]] inline void throw_moved_from(const char *what) {
    throw Error(SHOAL_ERR_INVALID_ARGUMENT,
                std::string("use of an empty (moved-from, sent or released) shoal::") + what);
}

} // namespace detail

// ---- timeouts ------------------------------------------------------------------

class Timeout {
public:
    template <class Rep, class Period>
    constexpr Timeout(const std::chrono::duration<Rep, Period> &d) noexcept : ns_(to_ns(d)) {}

    static constexpr Timeout from_ns(int64_t ns) noexcept { return Timeout(ns, 0); }
    // The value handed to C: SHOAL_TIMEOUT_POLL, SHOAL_TIMEOUT_FOREVER or ns.
    constexpr int64_t ns() const noexcept { return ns_; }
    constexpr bool is_forever() const noexcept { return ns_ == SHOAL_TIMEOUT_FOREVER; }

private:
    constexpr Timeout(int64_t ns, int) noexcept : ns_(ns) {}

    template <class Rep, class Period>
    static constexpr int64_t to_ns(const std::chrono::duration<Rep, Period> &d) noexcept {
        if (d <= d.zero()) return SHOAL_TIMEOUT_POLL;
        // Compare in long double so that no integral cast can overflow.
        const long double ns = std::chrono::duration<long double, std::nano>(d).count();
        if (ns >= static_cast<long double>(INT64_MAX)) return SHOAL_TIMEOUT_FOREVER;
        const int64_t whole = static_cast<int64_t>(ns);
        return static_cast<long double>(whole) < ns ? whole + 1 : whole; // round up
    }

    int64_t ns_;
};

inline constexpr Timeout no_wait = Timeout::from_ns(SHOAL_TIMEOUT_POLL);
inline constexpr Timeout forever = Timeout::from_ns(SHOAL_TIMEOUT_FOREVER);

// ---- payload views ---------------------------------------------------------------

// A (pointer, size) view of a chunk's payload, valid while its guard owns the
// chunk. Bytes is read-only, MutableBytes writable.
template <class B> class BasicBytes {
public:
    constexpr BasicBytes() noexcept = default;
    constexpr BasicBytes(B *data, std::size_t size) noexcept : data_(data), size_(size) {}

    constexpr B *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr B *begin() const noexcept { return data_; }
    constexpr B *end() const noexcept { return data_ + size_; }
    constexpr B &operator[](std::size_t i) const noexcept { return data_[i]; }
    // Bounds-checked element access.
    B &at(std::size_t i) const {
        if (i >= size_) throw std::out_of_range("shoal payload index out of range");
        return data_[i];
    }
    BasicBytes subspan(std::size_t offset, std::size_t count = SIZE_MAX) const {
        if (offset > size_) throw std::out_of_range("shoal payload offset out of range");
        return BasicBytes(data_ + offset, count < size_ - offset ? count : size_ - offset);
    }
    std::string_view text() const noexcept {
        return std::string_view(reinterpret_cast<const char *>(data_), size_);
    }
    operator BasicBytes<const std::byte>() const noexcept { return {data_, size_}; }

private:
    B *data_ = nullptr;
    std::size_t size_ = 0;
};
using Bytes = BasicBytes<const std::byte>;
using MutableBytes = BasicBytes<std::byte>;

// ---- introspection -------------------------------------------------------------

using PoolInfo = shoal_pool_info_t;
using PortInfo = shoal_port_info_t;
using DomainInfo = shoal_domain_info_t;
using ProcessInfo = shoal_process_info_t;

enum class FullPolicy : int {
    drop_oldest = SHOAL_FULL_DROP_OLDEST,
    reject = SHOAL_FULL_REJECT,
    wait = SHOAL_FULL_WAIT,
};

// ---- options: unset fields keep the library defaults (shoal_*_options_init) ----

struct RuntimeOptions {
    std::string domain;      // empty: $SHOAL_DOMAIN, else "default"
    std::string runtime_dir; // empty: $SHOAL_RUNTIME_DIR, else /tmp/shoal-<uid>
    std::optional<Timeout> connect_timeout;
};

struct PublisherOptions {
    std::optional<uint32_t> history;
    std::optional<FullPolicy> full_policy;
    std::optional<Timeout> send_timeout;
};

struct SubscriberOptions {
    std::optional<uint32_t> queue_capacity;
    std::optional<uint32_t> history;
    bool ignore_own_process = false; // skip samples of this process's publishers (bridges)
};

struct ClientOptions {
    std::optional<uint32_t> queue_capacity;
    std::optional<FullPolicy> full_policy;
    std::optional<Timeout> send_timeout;
    bool ignore_own_process = false; // never send to (nor count) this process's servers
};

struct ServerOptions {
    std::optional<uint32_t> queue_capacity;
    std::optional<FullPolicy> full_policy;
    std::optional<Timeout> send_timeout;
};

class Runtime;
class Publisher;
class Subscriber;
class Client;
class Server;
class WaitSet;

namespace detail {

// Owns a C handle; the deleter also holds what the handle depends on (the
// runtime for a port), so destruction order is always right.
template <class H, class Keep>
std::shared_ptr<H> adopt(H *h, void (*destroy)(H *), Keep keep) {
    // If allocating the control block throws, shared_ptr calls the deleter.
    return std::shared_ptr<H>(h, [destroy, keep = std::move(keep)](H *p) noexcept { destroy(p); });
}

template <class T> void check_view_type(std::size_t size, const void *p) {
    static_assert(std::is_trivially_copyable_v<T>,
                  "as<T>() needs a trivially copyable T (it lives in shared memory)");
    if (size < sizeof(T))
        throw Error(SHOAL_ERR_INVALID_ARGUMENT,
                    "payload of " + std::to_string(size) + " bytes is smaller than sizeof(T) = " +
                        std::to_string(sizeof(T)));
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) != 0)
        throw Error(SHOAL_ERR_INVALID_ARGUMENT,
                    "payload is not aligned to alignof(T) = " + std::to_string(alignof(T)));
}

// Common part of every chunk guard: the chunk, and a reference that keeps its
// port alive. Releases in the destructor.
class ChunkGuard {
public:
    ChunkGuard(const ChunkGuard &) = delete;
    ChunkGuard &operator=(const ChunkGuard &) = delete;

    // True while the guard owns a chunk.
    explicit operator bool() const noexcept { return chunk_ != nullptr; }
    bool valid() const noexcept { return chunk_ != nullptr; }

    std::size_t size() const { return static_cast<std::size_t>(shoal_chunk_size(get())); }
    // Request/response: the request's sequence id; pub/sub: the publisher's count.
    uint64_t sequence_id() const { return shoal_chunk_sequence_id(get()); }

    // Releases now instead of in the destructor; throws if the library
    // reports a failure (the chunk is consumed either way).
    void release() {
        shoal_chunk_t *c = std::exchange(chunk_, nullptr);
        if (!c) return;
        const shoal_result_t r = shoal_chunk_release(c);
        if (r != SHOAL_OK) {
            Error e = last_error(r);
            keep_.reset();
            throw e;
        }
        keep_.reset();
    }

    // The C chunk, still owned by this guard.
    shoal_chunk_t *native() const noexcept { return chunk_; }

protected:
    ChunkGuard(std::shared_ptr<void> keep, shoal_chunk_t *chunk, const char *what) noexcept
        : keep_(std::move(keep)), chunk_(chunk), what_(what) {}
    ChunkGuard(ChunkGuard &&o) noexcept
        : keep_(std::move(o.keep_)), chunk_(std::exchange(o.chunk_, nullptr)), what_(o.what_) {}
    ChunkGuard &operator=(ChunkGuard &&o) noexcept {
        if (this != &o) {
            reset();
            keep_ = std::move(o.keep_);
            chunk_ = std::exchange(o.chunk_, nullptr);
            what_ = o.what_;
        }
        return *this;
    }
    ~ChunkGuard() { reset(); }

    void reset() noexcept {
        if (shoal_chunk_t *c = std::exchange(chunk_, nullptr)) (void)shoal_chunk_release(c);
        keep_.reset();
    }

    shoal_chunk_t *get() const {
        if (!chunk_) throw_moved_from(what_);
        return chunk_;
    }

    std::shared_ptr<void> keep_;
    shoal_chunk_t *chunk_ = nullptr;
    const char *what_;
};

// A chunk that was received: read-only payload.
class Received : public ChunkGuard {
public:
    const std::byte *data() const { return static_cast<const std::byte *>(shoal_chunk_payload(get())); }
    Bytes bytes() const { return Bytes(data(), size()); }
    // The payload as characters (no terminating NUL is assumed).
    std::string_view text() const { return bytes().text(); }
    // The payload as a T (trivially copyable, size and alignment checked).
    template <class T> const T &as() const {
        const std::byte *p = data();
        check_view_type<T>(size(), p);
        return *std::launder(reinterpret_cast<const T *>(p));
    }

protected:
    using ChunkGuard::ChunkGuard;
};

} // namespace detail

// A sample taken by a Subscriber.
class Sample final : public detail::Received {
    friend class Subscriber;
    Sample(std::shared_ptr<void> keep, shoal_chunk_t *c) noexcept
        : Received(std::move(keep), c, "Sample") {}

public:
    Sample(Sample &&) noexcept = default;
    Sample &operator=(Sample &&) noexcept = default;
    Sample(const Sample &) = delete;
    Sample &operator=(const Sample &) = delete;
    ~Sample() = default;
};

// A request taken by a Server. Answer it with Server::loan_response().
class Request final : public detail::Received {
    friend class Server;
    Request(std::shared_ptr<void> keep, shoal_chunk_t *c) noexcept
        : Received(std::move(keep), c, "Request") {}

public:
    Request(Request &&) noexcept = default;
    Request &operator=(Request &&) noexcept = default;
    Request(const Request &) = delete;
    Request &operator=(const Request &) = delete;
    ~Request() = default;
};

// A response taken by a Client.
class Response final : public detail::Received {
    friend class Client;
    Response(std::shared_ptr<void> keep, shoal_chunk_t *c) noexcept
        : Received(std::move(keep), c, "Response") {}

public:
    Response(Response &&) noexcept = default;
    Response &operator=(Response &&) noexcept = default;
    Response(const Response &) = delete;
    Response &operator=(const Response &) = delete;
    ~Response() = default;
};

// A loaned chunk: a sample to publish, a request to send or a response to
// send. Released by the destructor unless sent.
class Loan final : public detail::ChunkGuard {
public:
    enum class Kind { sample, request, response };

    Loan(Loan &&) noexcept = default;
    Loan &operator=(Loan &&) noexcept = default;
    Loan(const Loan &) = delete;
    Loan &operator=(const Loan &) = delete;
    ~Loan() = default;

    Kind kind() const noexcept { return kind_; }

    std::byte *data() { return static_cast<std::byte *>(shoal_chunk_payload(get())); }
    const std::byte *data() const { return static_cast<const std::byte *>(shoal_chunk_payload(get())); }
    MutableBytes bytes() { return MutableBytes(data(), size()); }
    Bytes bytes() const { return Bytes(data(), size()); }

    template <class T> T &as() {
        std::byte *p = data();
        detail::check_view_type<T>(size(), p);
        return *std::launder(reinterpret_cast<T *>(p));
    }
    template <class T> const T &as() const {
        const std::byte *p = data();
        detail::check_view_type<T>(size(), p);
        return *std::launder(reinterpret_cast<const T *>(p));
    }
    // Constructs a T at the start of the payload.
    template <class T, class... Args> T &emplace(Args &&...args) {
        std::byte *p = data();
        detail::check_view_type<T>(size(), p);
        return *new (p) T(std::forward<Args>(args)...);
    }

    // Shrinks the size the receiver will see (never grows).
    void set_size(std::size_t size) { detail::check(shoal_chunk_set_size(get(), size)); }
    // Copies `n` bytes to the start of the payload and sets the size to n.
    void assign(const void *src, std::size_t n) {
        if (n > size())
            throw Error(SHOAL_ERR_INVALID_ARGUMENT, "assign of " + std::to_string(n) +
                                                        " bytes into a loan of " +
                                                        std::to_string(size()) + " bytes");
        if (n) std::memcpy(data(), src, n);
        set_size(n);
    }
    void assign(std::string_view s) { assign(s.data(), s.size()); }

    // Hands the chunk to the library: publishes a sample, sends a request
    // (returns its sequence id) or sends a response (returns 0). Consumes the
    // loan, on success and on failure.
    uint64_t send() {
        shoal_chunk_t *c = get();
        chunk_ = nullptr;
        uint64_t seq = 0;
        shoal_result_t r = SHOAL_ERR_INVALID_ARGUMENT;
        switch (kind_) {
        case Kind::sample:
            r = shoal_publisher_publish(static_cast<shoal_publisher_t *>(port_), c);
            break;
        case Kind::request:
            r = shoal_client_send(static_cast<shoal_client_t *>(port_), c, &seq);
            break;
        case Kind::response:
            r = shoal_server_send(static_cast<shoal_server_t *>(port_), c);
            break;
        }
        if (r != SHOAL_OK) {
            Error e = detail::last_error(r);
            keep_.reset();
            throw e;
        }
        keep_.reset();
        return seq;
    }
    // send() for a sample loaned from a Publisher.
    void publish() {
        if (kind_ != Kind::sample)
            throw Error(SHOAL_ERR_INVALID_ARGUMENT,
                        "publish() on a request/response loan; use send()");
        send();
    }

private:
    friend class Publisher;
    friend class Client;
    friend class Server;
    Loan(std::shared_ptr<void> keep, void *port, Kind kind, shoal_chunk_t *c) noexcept
        : ChunkGuard(std::move(keep), c, "Loan"), port_(port), kind_(kind) {}

    // Takes the chunk out of the guard (the caller hands it to C). A loan of
    // another port is refused before reaching C (wrong_port) and released by
    // the caller's guard, so it is consumed either way.
    shoal_chunk_t *release_to_library(const void *port, Kind kind) {
        if (chunk_ && (port != port_ || kind != kind_))
            throw Error(SHOAL_ERR_WRONG_PORT, "the loan belongs to another port (it was released)");
        return release_to_library();
    }
    shoal_chunk_t *release_to_library() {
        shoal_chunk_t *c = get();
        chunk_ = nullptr;
        return c;
    }

    void *port_;
    Kind kind_;
};

// ---- runtime ---------------------------------------------------------------------

// Registers this process with the daemon of a domain; one per process and
// domain. Ports keep it alive while they exist.
class Runtime {
public:
    explicit Runtime(const std::string &name, const RuntimeOptions &options = {}) {
        shoal_runtime_options_t o;
        shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
        if (!options.domain.empty()) o.domain = options.domain.c_str();
        if (!options.runtime_dir.empty()) o.runtime_dir = options.runtime_dir.c_str();
        if (options.connect_timeout) o.connect_timeout_ns = options.connect_timeout->ns();
        shoal_runtime_t *rt = nullptr;
        detail::check(shoal_runtime_create(&rt, name.c_str(), &o));
        rt_ = detail::adopt(rt, &shoal_runtime_destroy, 0);
    }
    Runtime(const Runtime &) = delete;
    Runtime &operator=(const Runtime &) = delete;
    Runtime(Runtime &&) noexcept = default;
    Runtime &operator=(Runtime &&) noexcept = default;
    ~Runtime() = default;

    std::string domain() const {
        const char *d = shoal_runtime_domain(get());
        return d ? d : "";
    }

    std::vector<PoolInfo> pools() const {
        const uint32_t n = shoal_runtime_pool_count(get());
        std::vector<PoolInfo> out(n);
        for (uint32_t i = 0; i < n; ++i) {
            out[i].version = SHOAL_POOL_INFO_VERSION;
            detail::check(shoal_runtime_pool_info(get(), i, &out[i]));
        }
        return out;
    }
    // Chunks allocated across all pools.
    uint64_t chunks_in_use() const {
        uint64_t sum = 0;
        for (const PoolInfo &p : pools()) sum += p.in_use;
        return sum;
    }
    // Live ports of all processes of the domain.
    std::vector<PortInfo> ports() const {
        std::vector<PortInfo> out;
        const uint32_t n = shoal_runtime_port_slots(get());
        for (uint32_t i = 0; i < n; ++i) {
            PortInfo info = SHOAL_PORT_INFO_INIT;
            const shoal_result_t r = shoal_runtime_port_info(get(), i, &info);
            if (r == SHOAL_ERR_NOT_FOUND) continue;
            detail::check(r);
            out.push_back(info);
        }
        return out;
    }

    // The daemon's limits and where they come from.
    DomainInfo domain_info() const {
        DomainInfo info = SHOAL_DOMAIN_INFO_INIT;
        detail::check(shoal_runtime_domain_info(get(), &info));
        return info;
    }
    // The processes registered with the daemon.
    std::vector<ProcessInfo> processes() const {
        std::vector<ProcessInfo> out;
        const uint32_t n = shoal_runtime_process_slots(get());
        for (uint32_t i = 0; i < n; ++i) {
            ProcessInfo info = SHOAL_PROCESS_INFO_INIT;
            const shoal_result_t r = shoal_runtime_process_info(get(), i, &info);
            if (r == SHOAL_ERR_NOT_FOUND) continue;
            detail::check(r);
            out.push_back(info);
        }
        return out;
    }

    shoal_runtime_t *native() const noexcept { return rt_.get(); }
    explicit operator bool() const noexcept { return static_cast<bool>(rt_); }

    inline Publisher publisher(const std::string &topic, const PublisherOptions &o = {});
    inline Subscriber subscriber(const std::string &topic, const SubscriberOptions &o = {});
    inline Client client(const std::string &service, const ClientOptions &o = {});
    inline Server server(const std::string &service, const ServerOptions &o = {});

private:
    friend class Publisher;
    friend class Subscriber;
    friend class Client;
    friend class Server;
    friend class WaitSet;

    shoal_runtime_t *get() const {
        if (!rt_) detail::throw_moved_from("Runtime");
        return rt_.get();
    }
    const std::shared_ptr<shoal_runtime_t> &shared() const {
        get();
        return rt_;
    }

    std::shared_ptr<shoal_runtime_t> rt_;
};

namespace detail {

// Base of the ports: a shared owner of the C handle (guards share it).
template <class H> class Port {
public:
    Port(const Port &) = delete;
    Port &operator=(const Port &) = delete;
    Port(Port &&) noexcept = default;
    Port &operator=(Port &&) noexcept = default;

    H *native() const noexcept { return h_.get(); }
    explicit operator bool() const noexcept { return static_cast<bool>(h_); }

protected:
    friend class shoal::WaitSet;
    Port(std::shared_ptr<H> h, const char *what) noexcept : h_(std::move(h)), what_(what) {}
    ~Port() = default;

    H *get() const {
        if (!h_) throw_moved_from(what_);
        return h_.get();
    }

    std::shared_ptr<H> h_;
    const char *what_;
};

inline void apply_policy(const std::optional<FullPolicy> &p, shoal_full_policy_t &out) {
    if (p) out = static_cast<shoal_full_policy_t>(*p);
}

} // namespace detail

// ---- publish / subscribe -----------------------------------------------------------

class Publisher final : public detail::Port<shoal_publisher_t> {
public:
    Publisher(const Runtime &rt, const std::string &topic, const PublisherOptions &options = {})
        : Port(create(rt, topic, options), "Publisher") {}

    // Loans a chunk of `size` bytes (> 0).
    Loan loan(std::size_t size) {
        shoal_chunk_t *c = nullptr;
        detail::check(shoal_publisher_loan(get(), size, &c));
        return Loan(h_, h_.get(), Loan::Kind::sample, c);
    }
    // Publishes a loan of this publisher; consumes it on success and failure.
    void publish(Loan &&loan) {
        Loan l = std::move(loan);
        shoal_chunk_t *c = l.release_to_library(get(), Loan::Kind::sample);
        detail::check(shoal_publisher_publish(get(), c));
    }
    // Loans, copies `n` bytes in and publishes.
    void publish_copy(const void *src, std::size_t n) {
        Loan l = loan(n ? n : 1);
        l.assign(src, n);
        publish(std::move(l));
    }
    void publish_copy(std::string_view s) { publish_copy(s.data(), s.size()); }

    uint32_t subscriber_count() const { return shoal_publisher_subscriber_count(get()); }

private:
    static std::shared_ptr<shoal_publisher_t> create(const Runtime &rt, const std::string &topic,
                                                     const PublisherOptions &options) {
        shoal_publisher_options_t o;
        shoal_publisher_options_init(&o, SHOAL_PUBLISHER_OPTIONS_VERSION);
        if (options.history) o.history = *options.history;
        detail::apply_policy(options.full_policy, o.full_policy);
        if (options.send_timeout) o.send_timeout_ns = options.send_timeout->ns();
        shoal_publisher_t *h = nullptr;
        detail::check(shoal_publisher_create(&h, rt.get(), topic.c_str(), &o));
        return detail::adopt(h, &shoal_publisher_destroy, rt.shared());
    }
};

class Subscriber final : public detail::Port<shoal_subscriber_t> {
public:
    Subscriber(const Runtime &rt, const std::string &topic, const SubscriberOptions &options = {})
        : Port(create(rt, topic, options), "Subscriber") {}

    // The oldest sample, or an empty optional if none arrived in time.
    std::optional<Sample> take(Timeout timeout) {
        shoal_chunk_t *c = nullptr;
        const shoal_result_t r = shoal_subscriber_take(get(), &c, timeout.ns());
        if (r == SHOAL_ERR_TIMEOUT) return std::nullopt;
        detail::check(r);
        return Sample(h_, c);
    }
    std::optional<Sample> try_take() { return take(no_wait); }

private:
    friend class WaitSet;
    static std::shared_ptr<shoal_subscriber_t> create(const Runtime &rt, const std::string &topic,
                                                      const SubscriberOptions &options) {
        shoal_subscriber_options_t o;
        shoal_subscriber_options_init(&o, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
        if (options.queue_capacity) o.queue_capacity = *options.queue_capacity;
        if (options.history) o.history = *options.history;
        o.ignore_own_process = options.ignore_own_process ? 1 : 0;
        shoal_subscriber_t *h = nullptr;
        detail::check(shoal_subscriber_create(&h, rt.get(), topic.c_str(), &o));
        return detail::adopt(h, &shoal_subscriber_destroy, rt.shared());
    }
};

// ---- request / response ----------------------------------------------------------------

class Client final : public detail::Port<shoal_client_t> {
public:
    Client(const Runtime &rt, const std::string &service, const ClientOptions &options = {})
        : Port(create(rt, service, options), "Client") {}

    // Loans a request of `size` bytes (> 0).
    Loan loan(std::size_t size) {
        shoal_chunk_t *c = nullptr;
        detail::check(shoal_client_loan(get(), size, &c));
        return Loan(h_, h_.get(), Loan::Kind::request, c);
    }
    // Sends a request to one server; returns its sequence id. Consumes it.
    uint64_t send(Loan &&request) {
        Loan l = std::move(request);
        shoal_chunk_t *c = l.release_to_library(get(), Loan::Kind::request);
        uint64_t seq = 0;
        detail::check(shoal_client_send(get(), c, &seq));
        return seq;
    }
    // The oldest response, or an empty optional if none arrived in time.
    std::optional<Response> take(Timeout timeout) {
        shoal_chunk_t *c = nullptr;
        const shoal_result_t r = shoal_client_take(get(), &c, timeout.ns());
        if (r == SHOAL_ERR_TIMEOUT) return std::nullopt;
        detail::check(r);
        return Response(h_, c);
    }
    std::optional<Response> try_take() { return take(no_wait); }
    // Sends and waits for the matching response (stale ones are released);
    // an empty optional if it did not come in time. Consumes the request.
    std::optional<Response> call(Loan &&request, Timeout timeout) {
        Loan l = std::move(request);
        shoal_chunk_t *c = l.release_to_library(get(), Loan::Kind::request);
        shoal_chunk_t *resp = nullptr;
        const shoal_result_t r = shoal_client_call(get(), c, &resp, timeout.ns());
        if (r == SHOAL_ERR_TIMEOUT) return std::nullopt;
        detail::check(r);
        return Response(h_, resp);
    }
    // Loans, copies `n` bytes in and calls.
    std::optional<Response> call_copy(const void *src, std::size_t n, Timeout timeout) {
        Loan l = loan(n ? n : 1);
        l.assign(src, n);
        return call(std::move(l), timeout);
    }
    std::optional<Response> call_copy(std::string_view s, Timeout timeout) {
        return call_copy(s.data(), s.size(), timeout);
    }

    uint32_t server_count() const { return shoal_client_server_count(get()); }

private:
    static std::shared_ptr<shoal_client_t> create(const Runtime &rt, const std::string &service,
                                                  const ClientOptions &options) {
        shoal_client_options_t o;
        shoal_client_options_init(&o, SHOAL_CLIENT_OPTIONS_VERSION);
        if (options.queue_capacity) o.queue_capacity = *options.queue_capacity;
        detail::apply_policy(options.full_policy, o.full_policy);
        if (options.send_timeout) o.send_timeout_ns = options.send_timeout->ns();
        o.ignore_own_process = options.ignore_own_process ? 1 : 0;
        shoal_client_t *h = nullptr;
        detail::check(shoal_client_create(&h, rt.get(), service.c_str(), &o));
        return detail::adopt(h, &shoal_client_destroy, rt.shared());
    }
};

class Server final : public detail::Port<shoal_server_t> {
public:
    Server(const Runtime &rt, const std::string &service, const ServerOptions &options = {})
        : Port(create(rt, service, options), "Server") {}

    // The oldest request, or an empty optional if none arrived in time.
    std::optional<Request> take(Timeout timeout) {
        shoal_chunk_t *c = nullptr;
        const shoal_result_t r = shoal_server_take(get(), &c, timeout.ns());
        if (r == SHOAL_ERR_TIMEOUT) return std::nullopt;
        detail::check(r);
        return Request(h_, c);
    }
    std::optional<Request> try_take() { return take(no_wait); }
    // Loans a response to `request` (which stays owned by the caller).
    Loan loan_response(const Request &request, std::size_t size) {
        shoal_chunk_t *req = request.native();
        if (!req) detail::throw_moved_from("Request");
        shoal_chunk_t *c = nullptr;
        detail::check(shoal_server_loan_response(get(), req, size, &c));
        return Loan(h_, h_.get(), Loan::Kind::response, c);
    }
    // Sends a response loan; consumes it on success and failure.
    void send(Loan &&response) {
        Loan l = std::move(response);
        shoal_chunk_t *c = l.release_to_library(get(), Loan::Kind::response);
        detail::check(shoal_server_send(get(), c));
    }
    // Loans a response to `request`, copies `n` bytes in and sends it.
    void respond_copy(const Request &request, const void *src, std::size_t n) {
        Loan l = loan_response(request, n ? n : 1);
        l.assign(src, n);
        send(std::move(l));
    }
    void respond_copy(const Request &request, std::string_view s) {
        respond_copy(request, s.data(), s.size());
    }

private:
    static std::shared_ptr<shoal_server_t> create(const Runtime &rt, const std::string &service,
                                                  const ServerOptions &options) {
        shoal_server_options_t o;
        shoal_server_options_init(&o, SHOAL_SERVER_OPTIONS_VERSION);
        if (options.queue_capacity) o.queue_capacity = *options.queue_capacity;
        detail::apply_policy(options.full_policy, o.full_policy);
        if (options.send_timeout) o.send_timeout_ns = options.send_timeout->ns();
        shoal_server_t *h = nullptr;
        detail::check(shoal_server_create(&h, rt.get(), service.c_str(), &o));
        return detail::adopt(h, &shoal_server_destroy, rt.shared());
    }
};

inline Publisher Runtime::publisher(const std::string &topic, const PublisherOptions &o) {
    return Publisher(*this, topic, o);
}
inline Subscriber Runtime::subscriber(const std::string &topic, const SubscriberOptions &o) {
    return Subscriber(*this, topic, o);
}
inline Client Runtime::client(const std::string &service, const ClientOptions &o) {
    return Client(*this, service, o);
}
inline Server Runtime::server(const std::string &service, const ServerOptions &o) {
    return Server(*this, service, o);
}

// ---- waitset ---------------------------------------------------------------------------

// Waits on many receiving ports at once. An attached port is kept alive (its
// C handle, not the C++ object) until it is detached or the waitset goes.
class WaitSet {
public:
    explicit WaitSet(const Runtime &rt) {
        shoal_waitset_t *ws = nullptr;
        detail::check(shoal_waitset_create(&ws, rt.get()));
        // Declared before the keepalives are dropped: see ~WaitSet order below.
        ws_ = detail::adopt(ws, &shoal_waitset_destroy, rt.shared());
    }
    WaitSet(const WaitSet &) = delete;
    WaitSet &operator=(const WaitSet &) = delete;
    WaitSet(WaitSet &&) noexcept = default;
    WaitSet &operator=(WaitSet &&o) noexcept {
        if (this != &o) {
            ws_ = std::move(o.ws_); // detaches ours before our ports go
            attached_ = std::move(o.attached_);
        }
        return *this;
    }
    ~WaitSet() { ws_.reset(); } // detach everything, then release the ports

    void attach(const Subscriber &sub, uint64_t tag) {
        detail::check(shoal_waitset_attach_subscriber(get(), sub.get(), tag));
        attached_.push_back({tag, sub.h_});
    }
    void attach(const Server &server, uint64_t tag) {
        detail::check(shoal_waitset_attach_server(get(), server.get(), tag));
        attached_.push_back({tag, server.h_});
    }
    void attach(const Client &client, uint64_t tag) {
        detail::check(shoal_waitset_attach_client(get(), client.get(), tag));
        attached_.push_back({tag, client.h_});
    }
    void detach(uint64_t tag) {
        detail::check(shoal_waitset_detach(get(), tag));
        for (auto it = attached_.begin(); it != attached_.end(); ++it) {
            if (it->first == tag) {
                attached_.erase(it);
                break;
            }
        }
    }
    // Tags of the ports that have data; empty if the timeout passed.
    std::vector<uint64_t> wait(Timeout timeout) {
        std::vector<uint64_t> tags(attached_.empty() ? 1 : attached_.size());
        size_t n = 0;
        const shoal_result_t r = shoal_waitset_wait(get(), tags.data(), tags.size(), &n, timeout.ns());
        if (r == SHOAL_ERR_TIMEOUT) return {};
        detail::check(r);
        tags.resize(n);
        return tags;
    }
    // Readable while any attached port has data; owned by the waitset.
    int fd() {
        int fd = -1;
        detail::check(shoal_waitset_fd(get(), &fd));
        return fd;
    }

    shoal_waitset_t *native() const noexcept { return ws_.get(); }

private:
    shoal_waitset_t *get() const {
        if (!ws_) detail::throw_moved_from("WaitSet");
        return ws_.get();
    }

    // Destruction order: attached_ is declared first, so it is destroyed
    // after ws_ (members go in reverse order) - the destructor resets ws_
    // explicitly anyway.
    std::vector<std::pair<uint64_t, std::shared_ptr<void>>> attached_;
    std::shared_ptr<shoal_waitset_t> ws_;
};

inline std::string version() { return shoal_version(); }

} // namespace shoal

#endif // SHOAL_HPP
