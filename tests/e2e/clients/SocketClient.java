import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/** Stock Java client: new Socket(name, port) connects to the first address only (blocking),
 *  then reads the banner line. Prints "GOT <banner>" or "ERR <exception>" on stdout and the
 *  connect time ("connect_ms=N", JVM start-up excluded) on stderr. */
public class SocketClient {
    public static void main(String[] args) {
        long t0 = System.nanoTime();
        try (Socket s = new Socket(args[0], Integer.parseInt(args[1]))) {
            long ms = (System.nanoTime() - t0) / 1_000_000;
            BufferedReader r = new BufferedReader(
                new InputStreamReader(s.getInputStream(), StandardCharsets.US_ASCII));
            String line = r.readLine();
            System.err.println("connect_ms=" + ms);
            System.out.println(line == null ? "ERR EOF" : "GOT " + line);
            System.exit(line == null ? 1 : 0);
        } catch (Exception e) {
            System.err.println("connect_ms=" + (System.nanoTime() - t0) / 1_000_000);
            System.out.println("ERR " + e);
            System.exit(1);
        }
    }
}
