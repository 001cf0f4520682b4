# The connect-again idiom in Ruby (stock ruby, socket library only). Modes:
#   tcp        Socket.tcp(NAME, PORT, connect_timeout: T): Ruby resolves and tries every address
#              in turn itself, each with connect_nonblock + IO.select + connect_nonblock again
#              (Errno::EISCONN = connected);
#   tcpsocket  TCPSocket.new(NAME, PORT, connect_timeout: T): the C extension's connect loop over
#              every address;
#   nonblock   the idiom by hand on ONE socket to the FIRST address of
#              Addrinfo.getaddrinfo(NAME, PORT, nil, :STREAM): connect_nonblock(exception: false)
#              -> :wait_writable -> IO.select -> connect_nonblock again, until connected
#              (0 / EISCONN) or a real error; at most MAX_CALLS calls.
# Prints `GOT <banner>` (exit 0) or `ERR <errno name>` (exit 1), then `CALLS <n>` (nonblock: the
# connect_nonblock calls made; other modes: -1) and `CONNECT_MS <ms>` (the connect phase: Ruby's
# start-up excluded; tcp/tcpsocket include their own lookup). Hard timeout: fourth argument, s
# (default 5), as connect_timeout and as the nonblock loop's deadline.
require 'socket'
require 'io/wait'

MAX_CALLS = 1_000_000

name, port, mode, timeout = ARGV
port = Integer(port)
mode ||= 'tcp'
timeout = Float(timeout || '5')

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def errno_name(e)
  return e.class.name.split('::').last if e.is_a?(SystemCallError)

  "#{e.class}: #{e.message}".gsub(/\s+/, ' ')
end

calls = -1
sock = nil
out = nil
t0 = now
begin
  case mode
  when 'tcp'
    sock = Socket.tcp(name, port, connect_timeout: timeout)
  when 'tcpsocket'
    sock = TCPSocket.new(name, port, connect_timeout: timeout)
  when 'nonblock'
    ai = Addrinfo.getaddrinfo(name, port, nil, :STREAM).first
    t0 = now # the lookup is not part of the connect phase here
    deadline = t0 + timeout
    sock = Socket.new(ai.pfamily, :STREAM, 0)
    calls = 0
    out = 'ERR ETIMEDOUT (client hard timeout)'
    while calls < MAX_CALLS
      left = deadline - now
      break if left <= 0

      calls += 1
      begin
        r = sock.connect_nonblock(ai, exception: false)
      rescue Errno::EISCONN
        r = 0
      end
      if r == :wait_writable
        IO.select(nil, [sock], nil, left)
        next
      end
      out = nil # connected
      break
    end
  else
    raise ArgumentError, "unknown mode #{mode}"
  end
rescue SystemCallError, SocketError, IOError => e
  out = "ERR #{errno_name(e)}"
end
connect_ms = (now - t0) * 1000
if out.nil?
  begin
    line = sock.wait_readable(timeout) && sock.gets
    out = line ? "GOT #{line.chomp}" : 'ERR EOF'
  rescue SystemCallError, IOError => e
    out = "ERR #{errno_name(e)}"
  end
end
sock&.close
$stdout.write(format("%s\nCALLS %d\nCONNECT_MS %.1f\n", out, calls, connect_ms))
$stdout.flush
exit(out.start_with?('GOT ') ? 0 : 1)
