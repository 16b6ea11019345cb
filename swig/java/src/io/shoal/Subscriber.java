package io.shoal;

import io.shoal.jni.ShoalNative;
import java.time.Duration;

/** Takes samples of a topic: {@code try (Sample s = sub.take(timeout)) { ... }}. */
public final class Subscriber extends Port {
    Subscriber(Runtime runtime, String topic, long handle) {
        super(runtime, topic, handle);
    }

    /** Options for {@link Runtime#subscriber(String, Options)}. */
    public static final class Options {
        // null = unset: the C library's default (shoal_*_options_init) is kept
        Integer queueCapacity;
        Integer history;
        Boolean ignoreOwnProcess;

        /** 0 = limits.queue_capacity of the daemon's config. */
        public Options queueCapacity(int capacity) {
            this.queueCapacity = capacity;
            return this;
        }

        /** Ask for up to this many past samples. */
        public Options history(int samples) {
            this.history = samples;
            return this;
        }

        /** Skip samples of this process's own publishers (a bridge that republishes). */
        public Options ignoreOwnProcess(boolean ignore) {
            this.ignoreOwnProcess = ignore;
            return this;
        }
    }

    /**
     * Takes the oldest sample, waiting up to {@code timeoutNs} ({@link Shoal#POLL},
     * {@link Shoal#FOREVER}); null if none arrived in time.
     */
    public Sample take(long timeoutNs) {
        long[] out = new long[1];
        int rc = ShoalNative.shoal_subscriber_take(handle(), out, timeoutNs);
        if (rc == ShoalException.TIMEOUT) {
            return null;
        }
        ShoalException.check(rc);
        return new Sample(this, out[0]);
    }

    /** {@link #take(long)} with a Duration (null = forever). */
    public Sample take(Duration timeout) {
        return take(Shoal.nanos(timeout));
    }

    @Override
    void destroy(long handle) {
        ShoalNative.shoal_subscriber_destroy(handle);
    }
}
