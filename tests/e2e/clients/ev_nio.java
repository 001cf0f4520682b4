// Java NIO client: SocketChannel non-blocking + Selector (epoll on Linux).
// new InetSocketAddress(NAME, PORT) resolves the name and keeps the FIRST address only;
// connect() -> false (EINPROGRESS), register OP_CONNECT, select(), finishConnect() (poll + SO_ERROR),
// then OP_READ and read the `HELLO <ip>` banner line.
// Prints `GOT <banner>` (exit 0) or `ERR <errno name>` (exit 1). Hard timeout: third argument, s.
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.NoRouteToHostException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

class ev_nio {
    static final long T0 = System.nanoTime();

    static void trace(String what) {
        System.err.println("ev " + (System.nanoTime() - T0) / 1_000_000 + " " + what);
    }

    static String errnoName(IOException e) {
        String m = String.valueOf(e.getMessage());
        if (m.contains("Connection refused")) return "ECONNREFUSED";
        if (m.contains("timed out")) return "ETIMEDOUT";
        if (m.contains("No route to host") || e instanceof NoRouteToHostException) return "EHOSTUNREACH";
        if (m.contains("Network is unreachable")) return "ENETUNREACH";
        if (m.contains("Connection reset")) return "ECONNRESET";
        if (e instanceof ConnectException) return "ECONNECT(" + m + ")";
        return e.getClass().getSimpleName() + "(" + m + ")";
    }

    public static void main(String[] args) throws Exception {
        String name = args[0];
        int port = Integer.parseInt(args[1]);
        long timeoutMs = (long) (Double.parseDouble(args.length > 2 ? args[2] : "10") * 1000);
        long deadline = System.currentTimeMillis() + timeoutMs;
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(timeoutMs + 500);
            } catch (InterruptedException e) {
                return;
            }
            System.out.println("ERR ETIMEDOUT (client hard timeout)");
            System.out.flush();
            Runtime.getRuntime().halt(1);
        });
        watchdog.setDaemon(true);
        watchdog.start();
        try {
            InetSocketAddress target = new InetSocketAddress(name, port);
            trace("target " + target);
            Selector sel = Selector.open();
            SocketChannel ch = SocketChannel.open();
            ch.configureBlocking(false);
            boolean now = ch.connect(target);
            trace("connect returned " + now);
            SelectionKey key = ch.register(sel, now ? SelectionKey.OP_READ : SelectionKey.OP_CONNECT);
            ByteBuffer buf = ByteBuffer.allocate(256);
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < 1000; i++) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    System.out.println("ERR ETIMEDOUT (select)");
                    System.exit(1);
                }
                int n = sel.select(left);
                trace("select " + n + " ready " + (n > 0 ? key.readyOps() : 0));
                sel.selectedKeys().clear();
                if (n == 0) continue;
                if (key.isConnectable()) {
                    if (ch.finishConnect()) {
                        trace("finishConnect true, remote " + ch.getRemoteAddress());
                        key.interestOps(SelectionKey.OP_READ);
                    } else {
                        trace("finishConnect false (still connecting)");
                    }
                    continue;
                }
                if (key.isReadable()) {
                    buf.clear();
                    int r = ch.read(buf);
                    if (r < 0) break;
                    buf.flip();
                    line.append(StandardCharsets.UTF_8.decode(buf));
                    if (line.indexOf("\n") >= 0) break;
                }
            }
            int nl = line.indexOf("\n");
            if (line.length() == 0) {
                System.out.println("ERR EOF");
                System.exit(1);
            }
            System.out.println("GOT " + (nl >= 0 ? line.substring(0, nl) : line));
            System.exit(0);
        } catch (IOException e) {
            trace("exception " + e);
            System.out.println("ERR " + errnoName(e));
            System.exit(1);
        }
    }
}
