package io.shoal;

import java.nio.ByteBuffer;

/** A request taken by a {@link Server}; read-only; answer it with {@link Server#loanResponse}, then close it. */
public final class Request extends Chunk {
    Request(Port port, long handle) {
        super(port, handle);
    }

    /** Read-only view of the payload (zero-copy). */
    @Override
    public ByteBuffer payload() {
        return super.payload().asReadOnlyBuffer().order(java.nio.ByteOrder.nativeOrder());
    }
}
