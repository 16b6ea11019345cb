package io.shoal;

import io.shoal.jni.ShoalNative;

/** Publishes samples on a topic: {@code try (Loan l = pub.loan(n)) { ...; pub.publish(l); }}. */
public final class Publisher extends Port {
    Publisher(Runtime runtime, String topic, long handle) {
        super(runtime, topic, handle);
    }

    /** Options for {@link Runtime#publisher(String, Options)}. */
    public static final class Options {
        // null = unset: the C library's default (shoal_*_options_init) is kept
        Integer history;
        FullPolicy fullPolicy;
        Long sendTimeoutNs;

        /** Samples kept for subscribers that join later. */
        public Options history(int samples) {
            this.history = samples;
            return this;
        }

        public Options fullPolicy(FullPolicy policy) {
            this.fullPolicy = policy;
            return this;
        }

        /** For {@link FullPolicy#WAIT}. */
        public Options sendTimeout(java.time.Duration timeout) {
            this.sendTimeoutNs = Shoal.nanos(timeout);
            return this;
        }
    }

    /** Loans a chunk of {@code size} bytes (size &gt; 0). */
    public Loan loan(long size) {
        long[] out = new long[1];
        ShoalException.check(ShoalNative.shoal_publisher_loan(handle(), size, out));
        return new Loan(this, out[0]);
    }

    /** Delivers the loan to every subscriber. Consumes the loan, also when this throws. */
    public void publish(Loan loan) {
        checkOwn(loan);
        long h = handle();
        ShoalException.check(ShoalNative.shoal_publisher_publish(h, loan.consume()));
    }

    /** Loans, copies {@code bytes} in and publishes. */
    public void publish(byte[] bytes) {
        try (Loan loan = loan(Math.max(1, bytes.length))) {
            loan.write(bytes);
            publish(loan);
        }
    }

    /** Subscribers currently matched. */
    public long subscriberCount() {
        return ShoalNative.shoal_publisher_subscriber_count(handle());
    }

    @Override
    void destroy(long handle) {
        ShoalNative.shoal_publisher_destroy(handle);
    }
}
