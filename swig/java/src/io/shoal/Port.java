package io.shoal;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * Common part of publishers, subscribers, clients and servers: the native
 * handle and the chunks this port has handed out, so that closing the port
 * releases them and makes them unusable (the chunk handles belong to the port).
 * One port must be used by one thread at a time.
 */
public abstract class Port implements AutoCloseable {
    private final Runtime runtime;
    private final String name;
    private long handle;
    private final Set<Chunk> chunks = Collections.newSetFromMap(new IdentityHashMap<>());
    private WaitSet waitSet;
    private long waitSetTag;

    Port(Runtime runtime, String name, long handle) {
        this.runtime = runtime;
        this.name = name;
        this.handle = handle;
        runtime.track(this);
    }

    /** Topic or service name. */
    public final String name() {
        return name;
    }

    public final Runtime runtime() {
        return runtime;
    }

    public final boolean isOpen() {
        return handle != 0;
    }

    final long handle() {
        long h = handle;
        if (h == 0) {
            throw new IllegalStateException(getClass().getSimpleName() + " '" + name + "' is closed");
        }
        return h;
    }

    synchronized void track(Chunk chunk) {
        chunks.add(chunk);
    }

    synchronized void untrack(Chunk chunk) {
        chunks.remove(chunk);
    }

    /** Chunks loaned or taken through this port and not yet released. */
    public synchronized int heldChunks() {
        return chunks.size();
    }

    final void checkOwn(Chunk chunk) {
        if (chunk.port() != this) {
            throw new IllegalArgumentException(chunk.getClass().getSimpleName() + " belongs to another port");
        }
    }

    synchronized void attachedTo(WaitSet waitSet, long tag) {
        this.waitSet = waitSet;
        this.waitSetTag = tag;
    }

    abstract void destroy(long handle);

    /** Releases every chunk still held through this port, then closes the port; idempotent. */
    @Override
    public void close() {
        long h;
        List<Chunk> held;
        WaitSet ws;
        long tag;
        synchronized (this) {
            ws = waitSet;
            tag = waitSetTag;
            waitSet = null;
        }
        if (ws != null) {
            ws.portClosing(tag);
        }
        synchronized (this) {
            h = handle;
            if (h == 0) {
                return;
            }
            handle = 0;
            held = new ArrayList<>(chunks);
            chunks.clear();
        }
        for (Chunk chunk : held) {
            chunk.releaseForPortClose();
        }
        destroy(h);
        runtime.untrack(this);
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + name + (isOpen() ? "" : ", closed") + "]";
    }
}
