// Go bypasses libc's connect (raw system calls; static builds ignore LD_PRELOAD): dnsfo cannot
// see it, but must do no harm (issue 5).  hard_go NAME PORT
//
// net.Dial("tcp", NAME:PORT) with a 3 s timeout (Go tries every address itself), reads the banner
// line: stdout `GOT <banner>` (exit 0) or `ERR <errno name>` (exit 1). On stderr, before that,
// `MAPS libdnsfo=<true|false>`: whether libdnsfo.so is mapped into this process.
// Built twice by tests/e2e/hardening/bypass.py: CGO_ENABLED=0 -tags netgo (static, pure Go
// resolver) and CGO_ENABLED=1 -tags netcgo (dynamic, libc's getaddrinfo).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
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
		}
		return fmt.Sprintf("errno%d", int(errno))
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "DNS " + dns.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "TIMEOUT"
	}
	return "OTHER " + err.Error()
}

func main() {
	if len(os.Args) < 3 {
		os.Exit(2)
	}
	maps, _ := os.ReadFile("/proc/self/maps")
	fmt.Fprintf(os.Stderr, "MAPS libdnsfo=%v\n", bytes.Contains(maps, []byte("libdnsfo")))

	c, err := net.DialTimeout("tcp", net.JoinHostPort(os.Args[1], os.Args[2]), 3*time.Second)
	if err != nil {
		fmt.Printf("ERR %s\n", errName(err))
		os.Exit(1)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 256)
	n := 0
	for i := 0; i < 64 && n < len(buf); i++ {
		k, err := c.Read(buf[n:])
		n += k
		if err != nil || bytes.IndexByte(buf[:n], '\n') >= 0 {
			break
		}
	}
	if n == 0 {
		fmt.Println("ERR EOF")
		os.Exit(1)
	}
	fmt.Printf("GOT %s\n", strings.SplitN(string(buf[:n]), "\n", 2)[0])
}
