import io.shoal.Client;
import io.shoal.Loan;
import io.shoal.Response;
import io.shoal.Runtime;
import io.shoal.ShoalException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * Calls the "echo" service once per argument and prints the responses.
 *
 *   java ... EchoClient.java [--service NAME] message...
 */
public class EchoClient {
    public static void main(String[] args) throws InterruptedException {
        String service = "echo";
        int first = 0;
        if (args.length >= 2 && args[0].equals("--service")) {
            service = args[1];
            first = 2;
        }
        if (args.length == first) {
            args = new String[] {"hello from java"};
            first = 0;
        }

        Runtime.Options options = new Runtime.Options().connectTimeout(Duration.ofSeconds(5));
        try (Runtime runtime = Runtime.create("java-echo-client", options);
             Client client = runtime.client(service)) {
            // Give a server that is still starting a few seconds to appear.
            for (int i = 0; i < 100 && client.serverCount() == 0; i++) {
                Thread.sleep(50);
            }
            for (int i = first; i < args.length; i++) {
                byte[] message = args[i].getBytes(StandardCharsets.UTF_8);
                try (Loan request = client.loan(Math.max(1, message.length))) {
                    request.write(message);
                    // call() sends (consuming the loan) and waits for the matching response.
                    try (Response response = client.call(request, Duration.ofSeconds(2))) {
                        String text = new String(response.toByteArray(), StandardCharsets.UTF_8);
                        System.out.println(args[i] + " -> " + text + " (sequence id " + response.sequenceId() + ")");
                    }
                }
            }
        } catch (ShoalException e) {
            // e.code() is the shoal_result_t, e.getMessage() says what and why.
            System.err.println("echo client: " + e.getMessage());
            System.exit(1);
        }
    }
}
