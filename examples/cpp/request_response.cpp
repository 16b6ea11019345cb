// Request/response with the C++ wrapper.
//
//   shoald &                              # one daemon per domain
//   ./request_response server &           # answers "example/add" requests
//   ./request_response client             # sends three requests, prints sums
//   ./request_response                    # both, in one process (two threads)
//
// Requests and responses are written in place in shared memory (zero-copy);
// every loan and take is released by its guard's destructor.
#include <shoal.hpp>

#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>

using namespace std::chrono_literals;

struct AddRequest {
    int64_t a;
    int64_t b;
};
struct AddResponse {
    int64_t sum;
};

static volatile std::sig_atomic_t g_stop = 0;

// Serves until `max_requests` were answered (0: until SIGINT/SIGTERM).
static void run_server(shoal::Runtime &rt, int max_requests) {
    shoal::Server server(rt, "example/add");
    std::printf("server: offering example/add\n");
    for (int served = 0; !g_stop && (max_requests == 0 || served < max_requests);) {
        std::optional<shoal::Request> req = server.take(200ms); // never wait forever
        if (!req) continue;
        const AddRequest &in = req->as<AddRequest>();
        shoal::Loan resp = server.loan_response(*req, sizeof(AddResponse));
        resp.emplace<AddResponse>(AddResponse{in.a + in.b});
        server.send(std::move(resp));
        ++served;
    } // req released here, at the end of each iteration
}

static int run_client(shoal::Runtime &rt) {
    shoal::Client client(rt, "example/add");
    for (int i = 0; i < 100 && client.server_count() == 0; ++i) std::this_thread::sleep_for(50ms);
    for (int64_t i = 1; i <= 3; ++i) {
        shoal::Loan req = client.loan(sizeof(AddRequest));
        req.emplace<AddRequest>(AddRequest{i, 10 * i});
        std::optional<shoal::Response> resp = client.call(std::move(req), 2s);
        if (!resp) {
            std::fprintf(stderr, "client: no response within 2 s\n");
            return 1;
        }
        std::printf("client: %" PRId64 " + %" PRId64 " = %" PRId64 "\n", i, 10 * i,
                    resp->as<AddResponse>().sum);
    }
    return 0;
}

int main(int argc, char **argv) {
    std::signal(SIGINT, [](int) { g_stop = 1; });
    std::signal(SIGTERM, [](int) { g_stop = 1; });
    const char *mode = argc > 1 ? argv[1] : "both";
    try {
        shoal::RuntimeOptions options;
        options.connect_timeout = 2s;
        shoal::Runtime rt(std::string("request_response_") + mode, options);
        if (std::strcmp(mode, "server") == 0) {
            run_server(rt, 0);
            return 0;
        }
        if (std::strcmp(mode, "client") == 0) return run_client(rt);
        std::thread server([&rt] {
            try {
                run_server(rt, 3);
            } catch (const shoal::Error &e) {
                std::fprintf(stderr, "server: %s\n", e.what());
            }
        });
        const int rc = run_client(rt);
        g_stop = 1;
        server.join();
        return rc;
    } catch (const shoal::Error &e) {
        // e.g. "SHOAL_ERR_DAEMON_UNAVAILABLE: ... start shoald --domain default"
        std::fprintf(stderr, "request_response: %s\n", e.what());
        return 1;
    }
}
