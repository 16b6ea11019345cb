package io.shoal;

import io.shoal.jni.ShoalNative;
import io.shoal.jni.shoal_result_t;

/**
 * A shoal call failed. {@link #code()} is the shoal_result_t of the C ABI (see
 * the constants below), {@link #detail()} the library's per-thread detail message
 * (which limit, which pool, what value, how to change it).
 */
public class ShoalException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public static final int INVALID_ARGUMENT = shoal_result_t.SHOAL_ERR_INVALID_ARGUMENT;
    public static final int TIMEOUT = shoal_result_t.SHOAL_ERR_TIMEOUT;
    public static final int POOL_EXHAUSTED = shoal_result_t.SHOAL_ERR_POOL_EXHAUSTED;
    public static final int CHUNK_TOO_LARGE = shoal_result_t.SHOAL_ERR_CHUNK_TOO_LARGE;
    public static final int PORT_LIMIT = shoal_result_t.SHOAL_ERR_PORT_LIMIT;
    public static final int HELD_LIMIT = shoal_result_t.SHOAL_ERR_HELD_LIMIT;
    public static final int QUEUE_FULL = shoal_result_t.SHOAL_ERR_QUEUE_FULL;
    public static final int DAEMON_UNAVAILABLE = shoal_result_t.SHOAL_ERR_DAEMON_UNAVAILABLE;
    public static final int VERSION_MISMATCH = shoal_result_t.SHOAL_ERR_VERSION_MISMATCH;
    public static final int PERMISSION = shoal_result_t.SHOAL_ERR_PERMISSION;
    public static final int NO_SERVER = shoal_result_t.SHOAL_ERR_NO_SERVER;
    public static final int SERVER_GONE = shoal_result_t.SHOAL_ERR_SERVER_GONE;
    public static final int CLIENT_GONE = shoal_result_t.SHOAL_ERR_CLIENT_GONE;
    public static final int CORRUPT = shoal_result_t.SHOAL_ERR_CORRUPT;
    public static final int NO_MEMORY = shoal_result_t.SHOAL_ERR_NO_MEMORY;
    public static final int SYSTEM = shoal_result_t.SHOAL_ERR_SYSTEM;
    public static final int WRONG_PORT = shoal_result_t.SHOAL_ERR_WRONG_PORT;
    public static final int PROCESS_LIMIT = shoal_result_t.SHOAL_ERR_PROCESS_LIMIT;
    public static final int SERVICE_LIMIT = shoal_result_t.SHOAL_ERR_SERVICE_LIMIT;
    public static final int ALREADY_EXISTS = shoal_result_t.SHOAL_ERR_ALREADY_EXISTS;
    public static final int NOT_FOUND = shoal_result_t.SHOAL_ERR_NOT_FOUND;
    public static final int BUSY = shoal_result_t.SHOAL_ERR_BUSY;

    private final int code;
    private final String name;
    private final String detail;

    public ShoalException(int code, String name, String detail) {
        super(detail == null || detail.isEmpty() ? name : name + ": " + detail);
        this.code = code;
        this.name = name;
        this.detail = detail == null ? "" : detail;
    }

    /** The shoal_result_t code. */
    public int code() {
        return code;
    }

    /** shoal_strerror(code). */
    public String codeName() {
        return name;
    }

    /** shoal_last_error_message() at the time of the failure (may be empty). */
    public String detail() {
        return detail;
    }

    /** Throws for a non-zero result; must run on the thread that made the call. */
    static void check(int result) {
        if (result != shoal_result_t.SHOAL_OK) {
            throw fromResult(result);
        }
    }

    static ShoalException fromResult(int result) {
        String detail = ShoalNative.shoal_last_error_message();
        return new ShoalException(result, ShoalNative.shoal_strerror(result), detail);
    }
}
