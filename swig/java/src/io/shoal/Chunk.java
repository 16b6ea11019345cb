package io.shoal;

import io.shoal.jni.ShoalNative;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A chunk of shared memory owned by this process: a {@link Loan} (to be sent or
 * published) or a received {@link Sample}, {@link Request} or {@link Response}.
 *
 * <p>Every chunk is released exactly once: by send/publish, or by {@link #close()}
 * (use try-with-resources). Closing the chunk's port releases it too. After that,
 * every accessor throws {@link IllegalStateException}. A {@link ByteBuffer} obtained
 * earlier from {@link #payload()} cannot be revoked by Java; do not keep it past
 * the chunk's {@code try} block.
 */
public abstract class Chunk implements AutoCloseable {
    private final Port port;
    private long handle;

    Chunk(Port port, long handle) {
        this.port = port;
        this.handle = handle;
        port.track(this);
    }

    /** The native handle; throws if the chunk was released, sent or its port closed. */
    final long handle() {
        long h = handle;
        if (h == 0) {
            throw new IllegalStateException(getClass().getSimpleName()
                    + " is closed (released, sent or published, or its port was closed)");
        }
        return h;
    }

    final Port port() {
        return port;
    }

    /** True until the chunk is released, sent or published. */
    public final boolean isOpen() {
        return handle != 0;
    }

    /**
     * The payload, zero-copy: a direct buffer over the shared memory, in native
     * byte order, of capacity {@link #size()}. Writable for loans, read-only for
     * received chunks.
     */
    public ByteBuffer payload() {
        ByteBuffer buffer = ShoalNative.shoal_chunk_payload(handle());
        buffer.order(ByteOrder.nativeOrder());
        return buffer;
    }

    /** Copies the payload into a new array. */
    public byte[] toByteArray() {
        ByteBuffer buffer = payload();
        byte[] bytes = new byte[buffer.remaining()];
        buffer.get(bytes);
        return bytes;
    }

    /** Payload bytes (as loaned, or as shrunk by {@link Loan#setSize}). */
    public long size() {
        return ShoalNative.shoal_chunk_size(handle());
    }

    /**
     * The request's sequence id for requests and responses; for pub/sub samples
     * the publisher's running count.
     */
    public long sequenceId() {
        return ShoalNative.shoal_chunk_sequence_id(handle());
    }

    /** Hands the handle over to send/publish: the chunk is consumed whatever the outcome. */
    final long consume() {
        long h = handle();
        handle = 0;
        port.untrack(this);
        return h;
    }

    /** The port is closing: release (ignoring failures) and forget the handle. */
    final void releaseForPortClose() {
        long h = handle;
        handle = 0;
        if (h != 0) {
            ShoalNative.shoal_chunk_release(h);
        }
    }

    /** Releases the chunk back to its pool unless already consumed; idempotent. */
    @Override
    public void close() {
        if (handle == 0) {
            return;
        }
        ShoalException.check(ShoalNative.shoal_chunk_release(consume()));
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + (isOpen() ? "[size=" + size() + ", seq=" + sequenceId() + "]" : "[closed]");
    }
}
