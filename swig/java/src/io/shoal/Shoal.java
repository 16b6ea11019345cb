package io.shoal;

import io.shoal.jni.ShoalNative;
import io.shoal.jni.ShoalNativeConstants;

/** Library-wide facts: versions and the special timeouts. */
public final class Shoal {
    /** Never wait. */
    public static final long POLL = ShoalNativeConstants.SHOAL_TIMEOUT_POLL;
    /** Wait without bound. */
    public static final long FOREVER = ShoalNativeConstants.SHOAL_TIMEOUT_FOREVER;

    private Shoal() {}

    /** Version of the loaded libshoal, e.g. "0.1.0". */
    public static String version() {
        return ShoalNative.shoal_version();
    }

    /** ABI version of the loaded libshoal (shared-memory layout and daemon protocol). */
    public static long abiVersion() {
        return ShoalNative.shoal_abi_version();
    }

    static long nanos(java.time.Duration timeout) {
        if (timeout == null) {
            return FOREVER;
        }
        if (timeout.isNegative()) {
            throw new IllegalArgumentException("negative timeout " + timeout + " (use null or Shoal.FOREVER)");
        }
        try {
            return timeout.toNanos();
        } catch (ArithmeticException tooLong) {
            return FOREVER;
        }
    }
}
