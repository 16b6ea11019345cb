package io.shoal;

import io.shoal.jni.ShoalNative;
import java.time.Duration;

/**
 * Sends requests to a service and takes the responses:
 * {@code try (Loan req = client.loan(n); Response resp = client.call(req.write(b), timeout)) { ... }}.
 */
public final class Client extends Port {
    Client(Runtime runtime, String service, long handle) {
        super(runtime, service, handle);
    }

    /** Options for {@link Runtime#client(String, Options)}. */
    public static final class Options {
        // null = unset: the C library's default (shoal_*_options_init) is kept
        Integer queueCapacity;
        FullPolicy fullPolicy;
        Long sendTimeoutNs;
        Boolean ignoreOwnProcess;

        /** Responses queued; 0 = limits.queue_capacity. */
        public Options queueCapacity(int capacity) {
            this.queueCapacity = capacity;
            return this;
        }

        /** Applied to the server's request queue. */
        public Options fullPolicy(FullPolicy policy) {
            this.fullPolicy = policy;
            return this;
        }

        public Options sendTimeout(Duration timeout) {
            this.sendTimeoutNs = Shoal.nanos(timeout);
            return this;
        }

        /** Never send to (nor count) this process's own servers. */
        public Options ignoreOwnProcess(boolean ignore) {
            this.ignoreOwnProcess = ignore;
            return this;
        }
    }

    /** Loans a request of {@code size} bytes. */
    public Loan loan(long size) {
        long[] out = new long[1];
        ShoalException.check(ShoalNative.shoal_client_loan(handle(), size, out));
        return new Loan(this, out[0]);
    }

    /**
     * Sends the request to exactly one server; returns its sequence id. Consumes
     * the loan, also when this throws.
     */
    public long send(Loan request) {
        checkOwn(request);
        long h = handle();
        long[] sequence = new long[1];
        ShoalException.check(ShoalNative.shoal_client_send(h, request.consume(), sequence));
        return sequence[0];
    }

    /** Takes the oldest response, waiting up to {@code timeoutNs}; null on timeout. */
    public Response take(long timeoutNs) {
        long[] out = new long[1];
        int rc = ShoalNative.shoal_client_take(handle(), out, timeoutNs);
        if (rc == ShoalException.TIMEOUT) {
            return null;
        }
        ShoalException.check(rc);
        return new Response(this, out[0]);
    }

    public Response take(Duration timeout) {
        return take(Shoal.nanos(timeout));
    }

    /**
     * Sends the request and waits for the response carrying its sequence id
     * (stale responses met on the way are released). Consumes the loan; throws
     * ShoalException (code TIMEOUT) if no response arrives in time.
     */
    public Response call(Loan request, long timeoutNs) {
        checkOwn(request);
        long h = handle();
        long[] out = new long[1];
        ShoalException.check(ShoalNative.shoal_client_call(h, request.consume(), out, timeoutNs));
        return new Response(this, out[0]);
    }

    public Response call(Loan request, Duration timeout) {
        return call(request, Shoal.nanos(timeout));
    }

    /** Loans, copies {@code bytes} in and calls. */
    public Response call(byte[] bytes, Duration timeout) {
        try (Loan request = loan(Math.max(1, bytes.length))) {
            request.write(bytes);
            return call(request, timeout);
        }
    }

    /** Servers currently offering the service. */
    public long serverCount() {
        return ShoalNative.shoal_client_server_count(handle());
    }

    @Override
    void destroy(long handle) {
        ShoalNative.shoal_client_destroy(handle);
    }
}
