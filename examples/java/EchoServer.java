import io.shoal.Loan;
import io.shoal.Request;
import io.shoal.Runtime;
import io.shoal.Server;
import java.nio.ByteBuffer;
import java.time.Duration;

/**
 * Serves the "echo" service: answers every request with its payload in upper case.
 * See README.md for how to run it; stop it with Ctrl-C (or give a request count).
 *
 *   java ... EchoServer.java [service] [requests]
 */
public class EchoServer {
    public static void main(String[] args) {
        String service = args.length > 0 ? args[0] : "echo";
        long limit = args.length > 1 ? Long.parseLong(args[1]) : Long.MAX_VALUE;

        // Domain and socket directory come from SHOAL_DOMAIN / SHOAL_RUNTIME_DIR.
        Runtime.Options options = new Runtime.Options().connectTimeout(Duration.ofSeconds(5));
        try (Runtime runtime = Runtime.create("java-echo-server", options);
             Server server = runtime.server(service)) {
            System.out.println("serving '" + service + "' on domain '" + runtime.domain() + "'");
            long served = 0;
            while (served < limit) {
                // The request is released when its try block ends, whatever happens.
                try (Request request = server.take(Duration.ofMillis(500))) {
                    if (request == null) {
                        continue; // timeout: nothing arrived
                    }
                    ByteBuffer in = request.payload(); // zero-copy, read-only
                    try (Loan response = server.loanResponse(request, Math.max(1, in.remaining()))) {
                        ByteBuffer out = response.payload(); // zero-copy, writable
                        while (in.hasRemaining()) {
                            out.put((byte) Character.toUpperCase(in.get()));
                        }
                        response.setSize(out.position());
                        server.send(response); // the response now belongs to the client
                    }
                    served++;
                }
            }
            System.out.println("served " + served + " request(s)");
        }
    }
}
