package io.shoal.test;

import io.shoal.Client;
import io.shoal.FullPolicy;
import io.shoal.Loan;
import io.shoal.PoolInfo;
import io.shoal.PortInfo;
import io.shoal.Publisher;
import io.shoal.Request;
import io.shoal.Response;
import io.shoal.Runtime;
import io.shoal.Sample;
import io.shoal.Server;
import io.shoal.Shoal;
import io.shoal.ShoalException;
import io.shoal.Subscriber;
import io.shoal.WaitSet;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/**
 * End-to-end test of the Java binding (run by ctest as plain `java`):
 *
 * <pre>java -Dshoal.jni.library=.../libshoal_jni.so -cp shoal.jar:shoal-test.jar \
 *     io.shoal.test.ShoalJavaTest /path/to/shoald</pre>
 *
 * Starts its own shoald on a private domain and runtime directory, then a second
 * JVM (this class with --child) that serves "java.echo" and publishes on
 * "java.ticks"; checks request/response and publish/subscribe across the two
 * processes, the try-with-resources pairing, errors, and that every pool is back
 * to in_use 0 at the end.
 */
public final class ShoalJavaTest {
    static final String SERVICE = "java.echo";
    static final String TOPIC = "java.ticks";
    static final Duration WAIT = Duration.ofSeconds(10);

    private static int checks;

    public static void main(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("--child")) {
            System.exit(child(args[1], args[2]));
        }
        if (args.length != 1) {
            System.err.println("usage: ShoalJavaTest /path/to/shoald");
            System.exit(2);
        }
        parent(args[0]);
        System.out.println("ShoalJavaTest: OK (" + checks + " checks)");
    }

    // ---- helpers ----------------------------------------------------------------

    static void check(boolean condition, String what) {
        checks++;
        if (!condition) {
            throw new AssertionError("check failed: " + what);
        }
    }

    static void waitUntil(BooleanSupplier condition, Duration timeout, String what) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + timeout + " waiting for " + what);
            }
            Thread.sleep(10);
        }
        checks++;
    }

    static ShoalException expectShoalException(int code, Runnable action, String what) {
        try {
            action.run();
        } catch (ShoalException e) {
            check(e.code() == code, what + ": expected code " + code + ", got " + e.code() + " (" + e.getMessage() + ")");
            check(!e.getMessage().isEmpty(), what + ": message");
            return e;
        }
        throw new AssertionError(what + ": expected ShoalException code " + code + ", nothing thrown");
    }

    static void expectIllegalState(Runnable action, String what) {
        try {
            action.run();
        } catch (IllegalStateException expected) {
            checks++;
            return;
        }
        throw new AssertionError(what + ": expected IllegalStateException");
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String text(ByteBuffer buffer) {
        byte[] bytes = new byte[buffer.remaining()];
        buffer.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    static Runtime connect(String name, String domain, String dir) {
        return Runtime.create(name, new Runtime.Options().domain(domain).runtimeDir(dir).connectTimeout(WAIT));
    }

    static boolean poolsIdle(Runtime rt) {
        for (PoolInfo pool : rt.pools()) {
            if (pool.inUse() != 0) {
                return false;
            }
        }
        return true;
    }

    // ---- parent: daemon, local checks, the child, cross-process checks ------------

    static void parent(String shoald) throws Exception {
        Path dir = Files.createTempDirectory("shoal-javatest-");
        String domain = "javatest-" + ProcessHandle.current().pid();
        Process daemon = new ProcessBuilder(shoald, "--domain", domain, "--runtime-dir", dir.toString(),
                "--log-level", "warn").inheritIO().start();
        Process child = null;
        try (Runtime rt = connect("java-test", domain, dir.toString())) {
            check(rt.domain().equals(domain), "runtime domain");
            check(!Shoal.version().isEmpty(), "version");
            check(!rt.pools().isEmpty(), "pools listed");

            localPubSub(rt);
            localWaitSet(rt);
            localErrors(rt);
            localIgnoreOwnProcess(rt);
            closingReleases(rt);
            waitUntil(() -> poolsIdle(rt), WAIT, "pools idle after the local checks");

            try (Subscriber ticks = rt.subscriber(TOPIC); Client client = rt.client(SERVICE)) {
                child = startChild(domain, dir.toString());
                final Process c = child;
                waitUntil(() -> client.serverCount() > 0 || !c.isAlive(), Duration.ofSeconds(60), "the child's server");
                check(child.isAlive(), "child alive");
                long childPid = child.pid();
                check(childPid != ProcessHandle.current().pid(), "child is another process");
                check(rt.ports().stream().anyMatch(p -> p.kind() == PortInfo.Kind.SERVER
                        && p.service().equals(SERVICE) && p.pid() == childPid),
                        "the server port belongs to the child process");

                // call: send + matching response
                try (Loan request = client.loan(64)) {
                    request.write(utf8("hello"));
                    try (Response response = client.call(request, WAIT)) {
                        check(text(response.payload()).equals("echo:hello"), "echo across processes");
                        check(response.size() == "echo:hello".length(), "response size");
                        check(!request.isOpen(), "call consumed the request");
                    }
                }
                // send/take with the sequence id
                long seq;
                try (Loan request = client.loan(16)) {
                    request.write(utf8("seq"));
                    seq = client.send(request);
                }
                try (Response response = client.take(WAIT)) {
                    check(response != null, "response taken");
                    check(response.sequenceId() == seq, "sequence id " + response.sequenceId() + " == " + seq);
                    check(text(response.payload()).equals("echo:seq"), "echo of send/take");
                    expectReadOnly(response.payload());
                }
                // a large payload, zero-copy in both directions
                int big = 512 * 1024;
                try (Loan request = client.loan(big)) {
                    ByteBuffer b = request.payload();
                    check(b.isDirect() && b.capacity() == big, "direct buffer of the loan's size");
                    for (int i = 0; i < big / 8; i++) {
                        b.putLong(i);
                    }
                    try (Response response = client.call(request, WAIT)) {
                        ByteBuffer r = response.payload();
                        check(r.capacity() == 8, "sum response");
                        long expect = (long) (big / 8) * (big / 8 - 1) / 2;
                        check(r.getLong() == expect, "sum of longs computed by the other process");
                    }
                }
                // publish/subscribe: the child publishes N ticks
                int n = 5;
                try (Response response = client.call(utf8("publish " + n), WAIT)) {
                    check(text(response.payload()).equals("published " + n), "publish acknowledged");
                }
                for (int i = 0; i < n; i++) {
                    try (Sample sample = ticks.take(WAIT)) {
                        check(sample != null, "sample " + i + " arrived");
                        check(text(sample.payload()).equals("tick " + i), "sample " + i + " content");
                    }
                }
                check(ticks.take(Shoal.POLL) == null, "no more samples");
                check(ticks.heldChunks() == 0 && client.heldChunks() == 0, "nothing held by the ports");

                // stop the child
                try (Response response = client.call(utf8("quit"), WAIT)) {
                    check(text(response.payload()).equals("bye"), "child says bye");
                }
                check(child.waitFor(30, TimeUnit.SECONDS), "child exits");
                check(child.exitValue() == 0, "child exit code 0 (was " + child.exitValue() + ")");
                waitUntil(() -> client.serverCount() == 0, WAIT, "the child's server is gone");
                expectShoalException(ShoalException.NO_SERVER, () -> client.call(utf8("anyone?"), WAIT).close(),
                        "call without a server");
            }
            // Options with one field set keep the C defaults of the others
            // (client/server REJECT and 1 s, publisher DROP_OLDEST and 1 s).
            try (Server srv = rt.server("java/opts", new Server.Options().queueCapacity(1));
                 Client cli = rt.client("java/opts", new Client.Options().queueCapacity(4))) {
                cli.send(cli.loan(8));
                expectShoalException(ShoalException.QUEUE_FULL, () -> cli.send(cli.loan(8)),
                        "client options with only queueCapacity set keep REJECT");
                try (Request r = srv.take(WAIT)) {
                    check(r != null, "the queued request");
                }
            }
            try (Subscriber sub = rt.subscriber("java/opts-ps", new Subscriber.Options().queueCapacity(1));
                 Publisher pub = rt.publisher("java/opts-ps", new Publisher.Options().fullPolicy(FullPolicy.WAIT))) {
                pub.publish(pub.loan(8));
                long t0 = System.nanoTime();
                expectShoalException(ShoalException.TIMEOUT, () -> pub.publish(pub.loan(8)),
                        "WAIT with a full queue times out");
                long waitedMs = (System.nanoTime() - t0) / 1_000_000;
                check(waitedMs >= 500, "publisher options with only fullPolicy set keep the 1 s send timeout (waited "
                        + waitedMs + " ms)");
                try (Sample s = sub.take(WAIT)) {
                    check(s != null, "the queued sample");
                }
            }
            waitUntil(() -> poolsIdle(rt), WAIT, "every pool back to in_use 0");
            for (PoolInfo pool : rt.pools()) {
                check(pool.inUse() == 0, "pool " + pool + " idle");
            }
        } finally {
            if (child != null && child.isAlive()) {
                child.destroyForcibly();
            }
            daemon.destroy();
            if (!daemon.waitFor(10, TimeUnit.SECONDS)) {
                daemon.destroyForcibly();
            }
            removeTree(dir);
        }
        check(daemon.exitValue() == 0 || daemon.exitValue() == 143, "shoald stopped cleanly (" + daemon.exitValue() + ")");
    }

    static void expectReadOnly(ByteBuffer buffer) {
        check(buffer.isReadOnly(), "received payload is read-only");
    }

    static void localPubSub(Runtime rt) {
        try (Publisher pub = rt.publisher("java.local"); Subscriber sub = rt.subscriber("java.local")) {
            check(pub.subscriberCount() == 1, "one local subscriber matched");
            ByteBuffer kept;
            try (Loan loan = pub.loan(8)) {
                kept = loan.payload();
                kept.putLong(0, 42L);
                pub.publish(loan);
                check(!loan.isOpen(), "publish consumed the loan");
                expectIllegalState(loan::payload, "payload after publish");
                expectIllegalState(() -> pub.publish(loan), "publish twice");
            }
            try (Sample sample = sub.take(WAIT)) {
                check(sample != null && sample.payload().getLong(0) == 42L, "local sample");
                check(sub.heldChunks() == 1, "subscriber holds the sample");
            }
            check(sub.heldChunks() == 0, "try-with-resources released the sample");
            check(sub.take(Shoal.POLL) == null, "poll on an empty queue gives null");
            check(sub.take(Duration.ofMillis(20)) == null, "timeout gives null");
        }
    }

    static void localWaitSet(Runtime rt) {
        Subscriber b = rt.subscriber("java.ws.other");
        try (Publisher pub = rt.publisher("java.ws");
             Subscriber a = rt.subscriber("java.ws");
             WaitSet ws = rt.waitSet()) {
            ws.attach(a, 7).attach(b, 8);
            check(ws.fd() >= 0, "waitset fd");
            check(ws.waitReady(Duration.ofMillis(20)).length == 0, "waitset timeout: no tags");
            pub.publish(utf8("ping"));
            long[] ready = ws.waitReady(WAIT);
            check(ready.length == 1 && ready[0] == 7, "waitset reports the ready subscriber");
            try (Sample s = a.take(Shoal.POLL)) {
                check(s != null && text(s.payload()).equals("ping"), "sample after the waitset");
            }
            ws.detach(8);
            b.close(); // detached already
            Subscriber c = rt.subscriber("java.ws");
            ws.attach(c, 9);
            c.close(); // closing an attached port detaches it
            pub.publish(utf8("pong"));
            ready = ws.waitReady(WAIT);
            check(ready.length == 1 && ready[0] == 7, "closed port no longer reported");
            a.take(Shoal.POLL).close();
        }
    }

    static void localErrors(Runtime rt) {
        try (Publisher pub = rt.publisher("java.errors")) {
            expectShoalException(ShoalException.CHUNK_TOO_LARGE, () -> pub.loan(1L << 50).close(), "huge loan");
            expectShoalException(ShoalException.INVALID_ARGUMENT, () -> pub.loan(0).close(), "empty loan");
        }
        try (Client client = rt.client("java.nobody")) {
            check(client.serverCount() == 0, "no server");
            Loan request = client.loan(8);
            expectShoalException(ShoalException.NO_SERVER, () -> client.send(request), "send without server");
            check(!request.isOpen(), "failed send consumed the loan");
            request.close(); // no-op
        }
        expectShoalException(ShoalException.DAEMON_UNAVAILABLE,
                () -> Runtime.create("nobody", new Runtime.Options().domain("javatest-no-such-domain")
                        .runtimeDir(System.getProperty("java.io.tmpdir"))).close(),
                "runtime without daemon");
    }

    static void localIgnoreOwnProcess(Runtime rt) {
        try (Subscriber deaf = rt.subscriber("java.own", new Subscriber.Options().ignoreOwnProcess(true));
             Subscriber plain = rt.subscriber("java.own");
             Publisher pub = rt.publisher("java.own")) {
            pub.publish(utf8("mine"));
            try (Sample s = plain.take(WAIT)) {
                check(s != null, "a plain subscriber sees its own process's sample");
            }
            check(deaf.take(Duration.ofMillis(50)) == null, "ignoreOwnProcess skips it");
        }
        try (Server srv = rt.server("java.own-svc");
             Client deaf = rt.client("java.own-svc", new Client.Options().ignoreOwnProcess(true));
             Client plain = rt.client("java.own-svc")) {
            check(srv.heldChunks() == 0, "server idle");
            check(plain.serverCount() == 1 && deaf.serverCount() == 0, "own server not counted");
            expectShoalException(ShoalException.NO_SERVER, () -> deaf.send(deaf.loan(8)),
                    "ignoreOwnProcess sends to no server of this process");
        }
    }

    static void closingReleases(Runtime rt) throws InterruptedException {
        Publisher pub = rt.publisher("java.close");
        Loan a = pub.loan(100);
        Loan b = pub.loan(100);
        check(pub.heldChunks() == 2, "two loans held");
        pub.close();
        check(!a.isOpen() && !b.isOpen(), "closing the port invalidated its loans");
        expectIllegalState(a::payload, "payload after port close");
        expectIllegalState(a::size, "size after port close");
        expectIllegalState(() -> pub.loan(1), "loan on a closed port");
        a.close(); // no-op
        b.close();
        pub.close(); // idempotent
        waitUntil(() -> poolsIdle(rt), WAIT, "port close returned the loans");
    }

    static Process startChild(String domain, String dir) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>();
        cmd.add(java);
        for (String prop : new String[] {"shoal.jni.library", "java.library.path"}) {
            String value = System.getProperty(prop);
            if (value != null) {
                cmd.add("-D" + prop + "=" + value);
            }
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(ShoalJavaTest.class.getName());
        cmd.add("--child");
        cmd.add(domain);
        cmd.add(dir);
        return new ProcessBuilder(cmd).inheritIO().start();
    }

    static void removeTree(Path dir) throws IOException {
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    // ---- child: server of java.echo, publisher of java.ticks ----------------------

    static int child(String domain, String dir) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        try (Runtime rt = connect("java-test-child", domain, dir);
             Server server = rt.server(SERVICE);
             Publisher ticks = rt.publisher(TOPIC)) {
            while (System.nanoTime() < deadline) {
                try (Request request = server.take(Duration.ofMillis(100))) {
                    if (request == null) {
                        continue;
                    }
                    ByteBuffer in = request.payload();
                    if (in.capacity() > 1024) {
                        long sum = 0;
                        while (in.remaining() >= 8) {
                            sum += in.getLong();
                        }
                        try (Loan response = server.loanResponse(request, 8)) {
                            response.payload().putLong(sum);
                            server.send(response);
                        }
                        continue;
                    }
                    String text = text(in);
                    if (text.startsWith("publish ")) {
                        int n = Integer.parseInt(text.substring(8));
                        long wait = System.nanoTime() + WAIT.toNanos();
                        while (ticks.subscriberCount() == 0 && System.nanoTime() < wait) {
                            Thread.sleep(10);
                        }
                        for (int i = 0; i < n; i++) {
                            ticks.publish(utf8("tick " + i));
                        }
                        server.respond(request, utf8("published " + n));
                    } else if (text.equals("quit")) {
                        server.respond(request, utf8("bye"));
                        return 0;
                    } else {
                        server.respond(request, utf8("echo:" + text));
                    }
                }
            }
            System.err.println("child: no quit within 90 s");
            return 3;
        } catch (Exception | AssertionError e) {
            e.printStackTrace();
            return 1;
        }
    }
}
