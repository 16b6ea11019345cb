package io.shoal;

import io.shoal.jni.ShoalNative;
import io.shoal.jni.shoal_client_options_t;
import io.shoal.jni.shoal_pool_info_t;
import io.shoal.jni.shoal_port_info_t;
import io.shoal.jni.shoal_port_kind_t;
import io.shoal.jni.shoal_publisher_options_t;
import io.shoal.jni.shoal_result_t;
import io.shoal.jni.shoal_runtime_options_t;
import io.shoal.jni.shoal_server_options_t;
import io.shoal.jni.shoal_subscriber_options_t;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * This process's registration with the daemon (shoald) of a domain. Ports are
 * created from it; closing it closes every waitset and port still open (and
 * releases their chunks). Safe to use from any thread.
 *
 * <pre>{@code
 * try (Runtime rt = Runtime.create("my-app");
 *      Publisher pub = rt.publisher("temperature")) {
 *     try (Loan loan = pub.loan(8)) {
 *         loan.payload().putDouble(21.5);
 *         pub.publish(loan);
 *     }
 * }
 * }</pre>
 */
public final class Runtime implements AutoCloseable {
    private long handle;
    private final Set<AutoCloseable> ports = Collections.newSetFromMap(new IdentityHashMap<>());

    /** Options for {@link Runtime#create(String, Options)}. */
    public static final class Options {
        // null = unset: the C library's default (shoal_*_options_init) is kept
        String domain;
        String runtimeDir;
        Long connectTimeoutNs;

        /** Domain name; default $SHOAL_DOMAIN, else "default". */
        public Options domain(String domain) {
            this.domain = domain;
            return this;
        }

        /** Directory of the daemon sockets; default $SHOAL_RUNTIME_DIR, else /tmp/shoal-&lt;uid&gt;. */
        public Options runtimeDir(String dir) {
            this.runtimeDir = dir;
            return this;
        }

        /** Keep retrying while the daemon starts (default: one attempt). */
        public Options connectTimeout(Duration timeout) {
            this.connectTimeoutNs = Shoal.nanos(timeout);
            return this;
        }
    }

    private Runtime(long handle) {
        this.handle = handle;
    }

    /** Registers with the default domain. */
    public static Runtime create(String name) {
        return create(name, null);
    }

    /** Registers with the daemon; {@code name} identifies this process in `shoal` listings. */
    public static Runtime create(String name, Options options) {
        shoal_runtime_options_t opts = new shoal_runtime_options_t();
        try {
            if (options != null) {
                opts.setDomain(options.domain);
                opts.setRuntime_dir(options.runtimeDir);
                if (options.connectTimeoutNs != null) opts.setConnect_timeout_ns(options.connectTimeoutNs);
            }
            long[] out = new long[1];
            ShoalException.check(ShoalNative.shoal_runtime_create(out, name, opts));
            return new Runtime(out[0]);
        } finally {
            opts.delete();
        }
    }

    synchronized long handle() {
        if (handle == 0) {
            throw new IllegalStateException("Runtime is closed");
        }
        return handle;
    }

    public boolean isOpen() {
        return handle != 0;
    }

    synchronized void track(AutoCloseable portOrWaitSet) {
        ports.add(portOrWaitSet);
    }

    synchronized void untrack(AutoCloseable portOrWaitSet) {
        ports.remove(portOrWaitSet);
    }

    /** A waitset over ports of this runtime. */
    public WaitSet waitSet() {
        long[] out = new long[1];
        ShoalException.check(ShoalNative.shoal_waitset_create(out, handle()));
        WaitSet ws = new WaitSet(this, out[0]);
        track(ws);
        return ws;
    }

    /** The domain this runtime is registered with. */
    public String domain() {
        return ShoalNative.shoal_runtime_domain(handle());
    }

    public Publisher publisher(String topic) {
        return publisher(topic, null);
    }

    public Publisher publisher(String topic, Publisher.Options options) {
        shoal_publisher_options_t opts = new shoal_publisher_options_t();
        try {
            if (options != null) {
                if (options.history != null) opts.setHistory(options.history);
                if (options.fullPolicy != null) opts.setFull_policy(options.fullPolicy.value);
                if (options.sendTimeoutNs != null) opts.setSend_timeout_ns(options.sendTimeoutNs);
            }
            long[] out = new long[1];
            ShoalException.check(ShoalNative.shoal_publisher_create(out, handle(), topic, opts));
            return new Publisher(this, topic, out[0]);
        } finally {
            opts.delete();
        }
    }

    public Subscriber subscriber(String topic) {
        return subscriber(topic, null);
    }

    public Subscriber subscriber(String topic, Subscriber.Options options) {
        shoal_subscriber_options_t opts = new shoal_subscriber_options_t();
        try {
            if (options != null) {
                if (options.queueCapacity != null) opts.setQueue_capacity(options.queueCapacity);
                if (options.history != null) opts.setHistory(options.history);
                if (options.ignoreOwnProcess != null) opts.setIgnore_own_process(options.ignoreOwnProcess ? 1 : 0);
            }
            long[] out = new long[1];
            ShoalException.check(ShoalNative.shoal_subscriber_create(out, handle(), topic, opts));
            return new Subscriber(this, topic, out[0]);
        } finally {
            opts.delete();
        }
    }

    public Client client(String service) {
        return client(service, null);
    }

    public Client client(String service, Client.Options options) {
        shoal_client_options_t opts = new shoal_client_options_t();
        try {
            if (options != null) {
                if (options.queueCapacity != null) opts.setQueue_capacity(options.queueCapacity);
                if (options.fullPolicy != null) opts.setFull_policy(options.fullPolicy.value);
                if (options.sendTimeoutNs != null) opts.setSend_timeout_ns(options.sendTimeoutNs);
                if (options.ignoreOwnProcess != null) opts.setIgnore_own_process(options.ignoreOwnProcess ? 1 : 0);
            }
            long[] out = new long[1];
            ShoalException.check(ShoalNative.shoal_client_create(out, handle(), service, opts));
            return new Client(this, service, out[0]);
        } finally {
            opts.delete();
        }
    }

    public Server server(String service) {
        return server(service, null);
    }

    public Server server(String service, Server.Options options) {
        shoal_server_options_t opts = new shoal_server_options_t();
        try {
            if (options != null) {
                if (options.queueCapacity != null) opts.setQueue_capacity(options.queueCapacity);
                if (options.fullPolicy != null) opts.setFull_policy(options.fullPolicy.value);
                if (options.sendTimeoutNs != null) opts.setSend_timeout_ns(options.sendTimeoutNs);
            }
            long[] out = new long[1];
            ShoalException.check(ShoalNative.shoal_server_create(out, handle(), service, opts));
            return new Server(this, service, out[0]);
        } finally {
            opts.delete();
        }
    }

    /** The domain's chunk pools and how many chunks are in use. */
    public List<PoolInfo> pools() {
        long h = handle();
        long count = ShoalNative.shoal_runtime_pool_count(h);
        List<PoolInfo> pools = new ArrayList<>();
        shoal_pool_info_t info = new shoal_pool_info_t();
        try {
            for (long i = 0; i < count; i++) {
                ShoalException.check(ShoalNative.shoal_runtime_pool_info(h, i, info));
                pools.add(new PoolInfo(info.getChunk_size(), info.getChunk_count(), info.getIn_use(),
                        info.getHigh_water(), info.getAlloc_failures()));
            }
        } finally {
            info.delete();
        }
        return pools;
    }

    /** The domain's live ports (all processes). */
    public List<PortInfo> ports() {
        long h = handle();
        long slots = ShoalNative.shoal_runtime_port_slots(h);
        List<PortInfo> result = new ArrayList<>();
        shoal_port_info_t info = new shoal_port_info_t();
        try {
            for (long slot = 0; slot < slots; slot++) {
                int rc = ShoalNative.shoal_runtime_port_info(h, slot, info);
                if (rc == shoal_result_t.SHOAL_ERR_NOT_FOUND) {
                    continue;
                }
                ShoalException.check(rc);
                result.add(new PortInfo(kind(info.getKind()), info.getId(), info.getPid(), info.getHeld(),
                        info.getQueued(), info.getQueue_capacity(), info.getSent(), info.getReceived(),
                        info.getDropped(), info.getStale(), info.getService(), info.getProcess()));
            }
        } finally {
            info.delete();
        }
        return result;
    }

    private static PortInfo.Kind kind(int kind) {
        switch (kind) {
            case shoal_port_kind_t.SHOAL_PORT_PUBLISHER: return PortInfo.Kind.PUBLISHER;
            case shoal_port_kind_t.SHOAL_PORT_SUBSCRIBER: return PortInfo.Kind.SUBSCRIBER;
            case shoal_port_kind_t.SHOAL_PORT_CLIENT: return PortInfo.Kind.CLIENT;
            case shoal_port_kind_t.SHOAL_PORT_SERVER: return PortInfo.Kind.SERVER;
            default: return PortInfo.Kind.UNKNOWN;
        }
    }

    /** Closes every port still open (releasing their chunks), then unregisters; idempotent. */
    @Override
    public void close() {
        List<AutoCloseable> open;
        long h;
        synchronized (this) {
            h = handle;
            if (h == 0) {
                return;
            }
            open = new ArrayList<>(ports);
        }
        // Waitsets first (they refer to ports), then the ports.
        open.sort((a, b) -> Boolean.compare(a instanceof Port, b instanceof Port));
        for (AutoCloseable closeable : open) {
            try {
                closeable.close();
            } catch (Exception e) {
                // keep closing the rest; the runtime's destroy returns everything anyway
            }
        }
        synchronized (this) {
            handle = 0;
            ports.clear();
        }
        ShoalNative.shoal_runtime_destroy(h);
    }
}
