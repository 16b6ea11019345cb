package io.shoal;

import java.nio.ByteBuffer;

/** A response taken by a {@link Client}; read-only; close releases it. */
public final class Response extends Chunk {
    Response(Port port, long handle) {
        super(port, handle);
    }

    /** Read-only view of the payload (zero-copy). */
    @Override
    public ByteBuffer payload() {
        return super.payload().asReadOnlyBuffer().order(java.nio.ByteOrder.nativeOrder());
    }
}
