/* A first C program against an installed shoal: one request/response round trip
 * through the daemon named by $SHOAL_DOMAIN / $SHOAL_RUNTIME_DIR. */
#include <shoal.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                      \
    do {                                                                                 \
        shoal_result_t rc_ = (call);                                                     \
        if (rc_ != SHOAL_OK) {                                                           \
            fprintf(stderr, "%s: %s\n  %s\n", #call, shoal_strerror(rc_),                \
                    shoal_last_error_message());                                         \
            return 1;                                                                    \
        }                                                                                \
    } while (0)

int main(void) {
    shoal_runtime_t *rt;
    CHECK(shoal_runtime_create(&rt, "consumer-c", NULL));
    shoal_server_t *server;
    shoal_client_t *client;
    CHECK(shoal_server_create(&server, rt, "consumer/echo", NULL));
    CHECK(shoal_client_create(&client, rt, "consumer/echo", NULL));
    shoal_chunk_t *req, *in, *out, *resp;
    CHECK(shoal_client_loan(client, 6, &req));
    memcpy(shoal_chunk_payload(req), "hello", 6);
    uint64_t seq;
    CHECK(shoal_client_send(client, req, &seq));
    CHECK(shoal_server_take(server, &in, 5000000000));
    CHECK(shoal_server_loan_response(server, in, shoal_chunk_size(in), &out));
    memcpy(shoal_chunk_payload(out), shoal_chunk_payload(in), shoal_chunk_size(in));
    CHECK(shoal_chunk_release(in));
    CHECK(shoal_server_send(server, out));
    CHECK(shoal_client_take(client, &resp, 5000000000));
    int ok = shoal_chunk_sequence_id(resp) == seq &&
             strcmp((const char *)shoal_chunk_payload(resp), "hello") == 0;
    CHECK(shoal_chunk_release(resp));
    shoal_runtime_destroy(rt);
    printf("consumer (C, shoal %s): %s\n", shoal_version(), ok ? "round trip ok" : "WRONG reply");
    return ok ? 0 : 1;
}
