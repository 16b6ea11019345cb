/* The C examples, run against a daemon of their own. */
#include "harness.h"

#include <stdlib.h>

static const char *const EXAMPLE_CONFIG =
    "[pools]\n"
    "64 = 1024\n"
    "4K = 256\n"
    "1M = 8\n";

static void run_example(th_daemon_t *d, const char *path, const char *const *args,
                        int use_env, const char *expect)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = path;
    char domain_env[128], dir_env[400];
    snprintf(domain_env, sizeof domain_env, "SHOAL_DOMAIN=%s", d->domain);
    snprintf(dir_env, sizeof dir_env, "SHOAL_RUNTIME_DIR=%s", d->runtime_dir);
    if (!use_env) {
        argv[n++] = "--domain";
        argv[n++] = d->domain;
    }
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    const char *env_domain[] = { domain_env, dir_env, NULL };
    const char *env_dir[] = { dir_env, NULL };
    static char out[8192], err[8192];
    int rc = th_run_program(path, argv, use_env ? env_domain : env_dir, out, sizeof out, err,
                            sizeof err, 60000);
    if (rc != 0)
        print_error("%s exited %d\nstdout:\n%s\nstderr:\n%s\n", path, rc, out, err);
    assert_int_equal(rc, 0);
    assert_contains(out, expect);
    assert_contains(out, "OK");
}

static void test_request_response_example(void **state)
{
    th_fixture_t *fx = *state;
    const char *args[] = { "--clients", "4", "--servers", "4", "--requests", "500", NULL };
    run_example(&fx->daemon, EXAMPLE_REQUEST_RESPONSE, args, 0, "4 clients x 4 servers");
    const char *args2[] = { "--clients", "2", "--servers", "3", "--size", "100000",
                            "--requests", "50", NULL };
    run_example(&fx->daemon, EXAMPLE_REQUEST_RESPONSE, args2, 1, "2 clients x 3 servers");
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "check");
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    shoal_runtime_destroy(rt);
}

static void test_publish_subscribe_example(void **state)
{
    th_fixture_t *fx = *state;
    const char *args[] = { "--subscribers", "3", "--samples", "2000", NULL };
    run_example(&fx->daemon, EXAMPLE_PUBLISH_SUBSCRIBE, args, 0, "to 3 subscribers");
    const char *args2[] = { "--subscribers", "5", "--samples", "300", "--size", "3000", NULL };
    run_example(&fx->daemon, EXAMPLE_PUBLISH_SUBSCRIBE, args2, 1, "to 5 subscribers");
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "check");
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    shoal_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST_CFG(test_request_response_example, EXAMPLE_CONFIG),
        TH_TEST_CFG(test_publish_subscribe_example, EXAMPLE_CONFIG),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
