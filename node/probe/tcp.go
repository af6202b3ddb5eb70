package probe

import (
	"context"
	"net"
	"strconv"
	"time"
)

// tcpProbe opens a TCP connection to host:port within timeout and closes
// it, as kubelet's DoTCPProbe: "If the socket can be opened, it returns
// Success. If the socket fails to open, it returns Failure" with the dial
// error as the message (e.g. "dial tcp 127.0.0.5:8080: connect: connection
// refused").
func tcpProbe(ctx context.Context, host string, port int, timeout time.Duration) (outcome, string, error) {
	d := *sharedDialer
	d.Timeout = timeout
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		// Convert errors to failures to handle timeouts.
		return outcomeFailure, err.Error(), nil
	}
	_ = conn.Close()
	return outcomeSuccess, "", nil
}
