package io.shoal;

import java.nio.ByteBuffer;

/** A sample taken from a {@link Subscriber}; read-only; close releases it. */
public final class Sample extends Chunk {
    Sample(Port port, long handle) {
        super(port, handle);
    }

    /** Read-only view of the payload (zero-copy). */
    @Override
    public ByteBuffer payload() {
        return super.payload().asReadOnlyBuffer().order(java.nio.ByteOrder.nativeOrder());
    }
}
