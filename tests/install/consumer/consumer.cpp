// A first C++ program against an installed shoal (shoal.hpp): publish/subscribe
// through the daemon named by $SHOAL_DOMAIN / $SHOAL_RUNTIME_DIR.
#include <shoal.hpp>

#include <cstdio>
#include <string_view>

using namespace std::chrono_literals;

int main() try {
    shoal::Runtime rt("consumer-cpp");
    shoal::Publisher pub(rt, "consumer/topic");
    shoal::Subscriber sub(rt, "consumer/topic");
    shoal::Loan loan = pub.loan(64);
    loan.assign("hello from C++");
    pub.publish(std::move(loan));
    std::optional<shoal::Sample> s = sub.take(5s);
    bool ok = s && std::string_view(reinterpret_cast<const char *>(s->data()), s->size()) ==
                       "hello from C++";
    std::printf("consumer (C++): %s\n", ok ? "publish/subscribe ok" : "WRONG sample");
    return ok ? 0 : 1;
} catch (const shoal::Error &e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
