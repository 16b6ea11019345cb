package io.shoal;

import io.shoal.jni.ShoalNative;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Waits on many receiving ports at once: attach subscribers, servers and clients
 * with a tag, then {@link #waitReady} returns the tags of those with data. Closing
 * the waitset detaches everything (the ports stay open); closing an attached port
 * detaches it first. Use from one thread at a time.
 */
public final class WaitSet implements AutoCloseable {
    private final Runtime runtime;
    private long handle;
    private final Map<Long, Port> attached = new HashMap<>();

    WaitSet(Runtime runtime, long handle) {
        this.runtime = runtime;
        this.handle = handle;
    }

    private long handle() {
        if (handle == 0) {
            throw new IllegalStateException("WaitSet is closed");
        }
        return handle;
    }

    public WaitSet attach(Subscriber subscriber, long tag) {
        return attach(subscriber, tag, ShoalNative.shoal_waitset_attach_subscriber(handle(), subscriber.handle(), tag));
    }

    public WaitSet attach(Server server, long tag) {
        return attach(server, tag, ShoalNative.shoal_waitset_attach_server(handle(), server.handle(), tag));
    }

    public WaitSet attach(Client client, long tag) {
        return attach(client, tag, ShoalNative.shoal_waitset_attach_client(handle(), client.handle(), tag));
    }

    private synchronized WaitSet attach(Port port, long tag, int result) {
        ShoalException.check(result);
        attached.put(tag, port);
        port.attachedTo(this, tag);
        return this;
    }

    /** Detaches the port attached with {@code tag}. */
    public synchronized void detach(long tag) {
        ShoalException.check(ShoalNative.shoal_waitset_detach(handle(), tag));
        Port port = attached.remove(tag);
        if (port != null) {
            port.attachedTo(null, 0);
        }
    }

    /** Called by a closing port. */
    synchronized void portClosing(long tag) {
        if (handle != 0 && attached.remove(tag) != null) {
            ShoalNative.shoal_waitset_detach(handle, tag);
        }
    }

    /**
     * Waits until at least one attached port has data or the timeout passes
     * (null = forever); returns the ready tags, empty on timeout.
     */
    public long[] waitReady(Duration timeout) {
        long[] tags = new long[Math.max(1, attached.size())];
        long[] count = new long[1];
        int rc = ShoalNative.shoal_waitset_wait(handle(), tags, count, Shoal.nanos(timeout));
        if (rc == ShoalException.TIMEOUT) {
            return new long[0];
        }
        ShoalException.check(rc);
        return Arrays.copyOf(tags, (int) Math.min(count[0], tags.length));
    }

    /**
     * A file descriptor that polls readable while an attached port has data (for
     * epoll/select integration); owned by the waitset, do not close it.
     */
    public int fd() {
        int[] fd = new int[1];
        ShoalException.check(ShoalNative.shoal_waitset_fd(handle(), fd));
        return fd[0];
    }

    /** Detaches everything; the ports stay open. Idempotent. */
    @Override
    public void close() {
        long h;
        synchronized (this) {
            h = handle;
            if (h == 0) {
                return;
            }
            handle = 0;
            for (Port port : attached.values()) {
                port.attachedTo(null, 0);
            }
            attached.clear();
        }
        ShoalNative.shoal_waitset_destroy(h);
        runtime.untrack(this);
    }
}
