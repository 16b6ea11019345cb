package io.shoal;

import io.shoal.jni.ShoalNative;
import java.time.Duration;

/**
 * Offers a service: {@code try (Request req = server.take(t)) { try (Loan resp =
 * server.loanResponse(req, n)) { ...; server.send(resp); } }}.
 */
public final class Server extends Port {
    Server(Runtime runtime, String service, long handle) {
        super(runtime, service, handle);
    }

    /** Options for {@link Runtime#server(String, Options)}. */
    public static final class Options {
        // null = unset: the C library's default (shoal_*_options_init) is kept
        Integer queueCapacity;
        FullPolicy fullPolicy;
        Long sendTimeoutNs;

        /** Requests queued; 0 = limits.queue_capacity. */
        public Options queueCapacity(int capacity) {
            this.queueCapacity = capacity;
            return this;
        }

        /** Applied to the client's response queue. */
        public Options fullPolicy(FullPolicy policy) {
            this.fullPolicy = policy;
            return this;
        }

        public Options sendTimeout(Duration timeout) {
            this.sendTimeoutNs = Shoal.nanos(timeout);
            return this;
        }
    }

    /** Takes the oldest request, waiting up to {@code timeoutNs}; null on timeout. */
    public Request take(long timeoutNs) {
        long[] out = new long[1];
        int rc = ShoalNative.shoal_server_take(handle(), out, timeoutNs);
        if (rc == ShoalException.TIMEOUT) {
            return null;
        }
        ShoalException.check(rc);
        return new Request(this, out[0]);
    }

    public Request take(Duration timeout) {
        return take(Shoal.nanos(timeout));
    }

    /**
     * Loans a response to {@code request} (which stays open: close it yourself).
     * Throws ShoalException CLIENT_GONE if the client no longer exists.
     */
    public Loan loanResponse(Request request, long size) {
        checkOwn(request);
        long[] out = new long[1];
        ShoalException.check(ShoalNative.shoal_server_loan_response(handle(), request.handle(), size, out));
        return new Loan(this, out[0]);
    }

    /** Sends a response to its client. Consumes the loan, also when this throws. */
    public void send(Loan response) {
        checkOwn(response);
        long h = handle();
        ShoalException.check(ShoalNative.shoal_server_send(h, response.consume()));
    }

    /** Loans a response, copies {@code bytes} in and sends it. */
    public void respond(Request request, byte[] bytes) {
        try (Loan response = loanResponse(request, Math.max(1, bytes.length))) {
            response.write(bytes);
            send(response);
        }
    }

    @Override
    void destroy(long handle) {
        ShoalNative.shoal_server_destroy(handle);
    }
}
