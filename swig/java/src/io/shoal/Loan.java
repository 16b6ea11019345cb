package io.shoal;

import io.shoal.jni.ShoalNative;
import java.nio.ByteBuffer;

/**
 * A loaned chunk to fill and then publish or send. Closing a loan that was not
 * sent returns it to its pool.
 */
public final class Loan extends Chunk {
    Loan(Port port, long handle) {
        super(port, handle);
    }

    /** Shrinks (never grows) the size the receiver will see. */
    public Loan setSize(long size) {
        ShoalException.check(ShoalNative.shoal_chunk_set_size(handle(), size));
        return this;
    }

    /** Copies {@code bytes} to the start of the payload and sets the size to their length. */
    public Loan write(byte[] bytes) {
        ByteBuffer buffer = payload();
        if (bytes.length > buffer.capacity()) {
            throw new IllegalArgumentException(bytes.length + " bytes do not fit a loan of " + buffer.capacity());
        }
        buffer.put(bytes);
        return setSize(bytes.length);
    }
}
