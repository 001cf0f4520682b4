// Go client for the supervisor tests (issue 16), standard library only, built with
// CGO_ENABLED=0 by tests/e2e/supervise.py: static, pure Go resolver, raw system calls; LD_PRELOAD
// cannot reach it, only `dnsfo run --supervise` can.
//
//	sv_dial dial HOST:PORT          net.Dialer{} (no timeout: net.Dial's own), banner via File()
//	sv_dial http HOST:PORT          http.Get("http://HOST:PORT/") with the default client
//	sv_dial lookup-dial HOST:PORT   net.LookupHost(HOST), then `dial`
//	sv_dial threads N HOST:PORT     N goroutines dial at once, each reads its banner
//	sv_dial steps N PORT NAME...    N steps, one dial per NAME each; READY + a stdin line after step 0
//
// Go has its own serial fallback over a name's addresses (and happy eyeballs across families),
// so every dial counts the connect attempts Go itself made (net.Dialer.Control is called once
// per attempt, before its connect()): `TRIED <n> <addr>...`. A dial that lands on the live
// address with TRIED 1 was not rescued by Go's fallback.
//
// `dial` prints: PID, DIALING, TRIED, MS (the dial's duration), PEER, SAME inode=<0|1> file=<0|1>
// (the connected fd is the socket Go made before connect, and File()'s dup is the same socket:
// the banner is read through that dup), then the outcome: `GOT <banner>` (exit 0) or
// `ERR <errno name> <error text>` (exit 1), always the last line.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func errName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNREFUSED:
			return "ECONNREFUSED"
		case syscall.ECONNRESET:
			return "ECONNRESET"
		case syscall.ETIMEDOUT:
			return "ETIMEDOUT"
		case syscall.EHOSTUNREACH:
			return "EHOSTUNREACH"
		case syscall.ENETUNREACH:
			return "ENETUNREACH"
		case syscall.EALREADY:
			return "EALREADY"
		case syscall.EINPROGRESS:
			return "EINPROGRESS"
		}
		return fmt.Sprintf("errno%d", int(errno))
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "DNS"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "TIMEOUT"
	}
	return "OTHER"
}

// attempts records every connect Go's dialer makes: its address and the inode of its socket.
type attempts struct {
	mu    sync.Mutex
	addrs []string
	inode uint64
}

func (a *attempts) control(network, address string, c syscall.RawConn) error {
	var st syscall.Stat_t
	c.Control(func(fd uintptr) { syscall.Fstat(int(fd), &st) })
	a.mu.Lock()
	a.addrs = append(a.addrs, address)
	a.inode = st.Ino
	a.mu.Unlock()
	return nil
}

func (a *attempts) line() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("TRIED %d %s", len(a.addrs), strings.Join(a.addrs, " "))
}

func inodeOf(c syscall.Conn) uint64 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var st syscall.Stat_t
	rc.Control(func(fd uintptr) { syscall.Fstat(int(fd), &st) })
	return st.Ino
}

func firstLine(r io.Reader) string {
	line, _ := bufio.NewReader(r).ReadString('\n')
	return strings.TrimRight(line, "\r\n")
}

func fail(err error) {
	fmt.Printf("ERR %s %v\n", errName(err), err)
	os.Exit(1)
}

// dial: one net.Dial-equivalent dial (no timeout), the banner read through File()'s dup.
func dial(target string) {
	a := &attempts{}
	d := &net.Dialer{Control: a.control}
	fmt.Printf("DIALING %s\n", target)
	t0 := time.Now()
	c, err := d.Dial("tcp", target)
	ms := time.Since(t0).Milliseconds()
	fmt.Println(a.line())
	fmt.Printf("MS %d\n", ms)
	if err != nil {
		fail(err)
	}
	tc := c.(*net.TCPConn)
	fmt.Printf("PEER %s\n", c.RemoteAddr())
	ino := inodeOf(tc)
	f, err := tc.File()
	if err != nil {
		fail(err)
	}
	var st syscall.Stat_t
	syscall.Fstat(int(f.Fd()), &st)
	fmt.Printf("SAME inode=%d file=%d\n", b2i(ino == a.inode && ino != 0), b2i(st.Ino == ino))
	banner := firstLine(f)
	f.Close()
	c.Close()
	if banner == "" {
		fmt.Println("ERR EOF")
		os.Exit(1)
	}
	fmt.Printf("GOT %s\n", banner)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// httpGet: http.Get with the default client; its transport's dialer is the default one
// (30 s timeout, 30 s keep-alive) plus the attempt counter; no proxy from the environment.
func httpGet(target string) {
	a := &attempts{}
	tr := http.DefaultTransport.(*http.Transport)
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
		Control: a.control}).DialContext
	tr.Proxy = nil
	fmt.Printf("DIALING %s\n", target)
	t0 := time.Now()
	r, err := http.Get("http://" + target + "/")
	ms := time.Since(t0).Milliseconds()
	fmt.Println(a.line())
	fmt.Printf("MS %d\n", ms)
	if err != nil {
		fail(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	fmt.Printf("STATUS %d\n", r.StatusCode)
	fmt.Printf("GOT %s\n", strings.TrimRight(string(body), "\r\n"))
}

func lookupDial(target string) {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		fail(err)
	}
	addrs, err := net.LookupHost(host)
	if err != nil {
		fmt.Printf("LOOKUP ERR %v\n", err)
	} else {
		fmt.Printf("LOOKUP %s\n", strings.Join(addrs, " "))
	}
	dial(target)
}

// threads: n goroutines released at once, each a dial plus its banner.
func threads(n int, target string) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	a := &attempts{}
	d := &net.Dialer{Control: a.control}
	got := map[string]int{}
	errs := map[string]int{}
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := d.Dial("tcp", target)
			var banner string
			if err == nil {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				banner = firstLine(c)
				c.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[errName(err)]++
			} else {
				got[banner]++
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	ms := time.Since(t0).Milliseconds()
	a.mu.Lock()
	tried := len(a.addrs)
	a.mu.Unlock()
	fmt.Printf("THREADS n=%d tried=%d ms=%d\n", n, tried, ms)
	for b, k := range got {
		fmt.Printf("GOT %s x%d\n", b, k)
	}
	for e, k := range errs {
		fmt.Printf("ERR %s x%d\n", e, k)
	}
}

// one dial of a steps run: `GOT <banner> TRIED <n>` or `ERR <errno> TRIED <n>`.
func stepDial(target string) string {
	a := &attempts{}
	d := &net.Dialer{Control: a.control}
	c, err := d.Dial("tcp", target)
	a.mu.Lock()
	tried := len(a.addrs)
	a.mu.Unlock()
	if err != nil {
		return fmt.Sprintf("ERR %s TRIED %d", errName(err), tried)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	banner := firstLine(c)
	c.Close()
	return fmt.Sprintf("GOT %s TRIED %d", banner, tried)
}

func steps(n int, port string, names []string) {
	in := bufio.NewReader(os.Stdin)
	for i := 0; i < n; i++ {
		for _, name := range names {
			fmt.Printf("STEP %d %s %s\n", i, name, stepDial(net.JoinHostPort(name, port)))
		}
		if i == 0 {
			fmt.Println("READY")
			if _, err := in.ReadString('\n'); err != nil {
				fmt.Println("EOF on stdin")
			}
		}
	}
	fmt.Println("DONE")
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sv_dial dial|http|lookup-dial HOST:PORT | threads N HOST:PORT | steps N PORT NAME...")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	fmt.Printf("PID %d\n", os.Getpid())
	switch os.Args[1] {
	case "dial":
		dial(os.Args[2])
	case "http":
		httpGet(os.Args[2])
	case "lookup-dial":
		lookupDial(os.Args[2])
	case "threads":
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || len(os.Args) != 4 {
			usage()
		}
		threads(n, os.Args[3])
	case "steps":
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || len(os.Args) < 5 {
			usage()
		}
		steps(n, os.Args[3], os.Args[4:])
	default:
		usage()
	}
}
