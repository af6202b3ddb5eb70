package ingress

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/switchboard-dev/switchboard/ingress/annotations"
)

// startWebSocketBackend echoes WebSocket messages, prefixed with the
// backend's name and the X-Forwarded-Proto it saw.
func startWebSocketBackend(t *testing.T, name string) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		proto := r.Header.Get("X-Forwarded-Proto")
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, []byte(name+" "+proto+" "+r.URL.Path+": "+string(msg))); err != nil {
				return
			}
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { srv.Close() })
	go srv.Serve(ln)
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// dialTo makes a dialer that reaches addr whatever host is asked for
// (curl's --resolve for Go clients).
func dialTo(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
}

// TestWebSocket: an HTTP/1.1 Upgrade to WebSocket (RFC 6455 section 4)
// passes through the ingress, over plain HTTP and over TLS, and messages
// flow both ways on the upgraded connection.
func TestWebSocket(t *testing.T) {
	s := newStore(t)
	e := startController(t, s, nil)
	e.create(classObj("switchboard", true))
	secret, _ := tlsSecretObj(t, "shop", "ws-tls", "wss.test")
	e.create(secret,
		serviceObj("shop", "ws"), sliceObj("shop", "ws", "ws", startWebSocketBackend(t, "ws"), "127.0.0.1"),
		ingressObj("shop", "ws", "ws.test", pathRule("Prefix", "/chat", "ws", 80)))
	wss := annotated(ingressObj("shop", "wss", "wss.test", pathRule("Prefix", "/", "ws", 80)), annotations.RewriteTarget, "/rewritten")
	wss.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"wss.test"}, SecretName: "ws-tls"}}
	e.create(wss)
	e.settle()

	cases := []struct {
		name, url, addr, want string
	}{
		{"ws over HTTP/1.1", "ws://ws.test/chat/room1", e.http, "ws http /chat/room1: "},
		{"wss over TLS (and rewrite-target)", "wss://wss.test/room2", e.https, "ws https /rewritten/room2: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := websocket.Dialer{NetDialContext: dialTo(c.addr), HandshakeTimeout: 5 * time.Second,
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "wss.test"}}
			conn, resp, err := d.Dial(c.url, nil)
			if err != nil {
				t.Fatalf("dial %s: %v (response %v)", c.url, err, resp)
			}
			defer conn.Close()
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Errorf("status %d, want 101", resp.StatusCode)
			}
			conn.NetConn().SetDeadline(time.Now().Add(5 * time.Second))
			for _, msg := range []string{"hello", strings.Repeat("x", 70000), "bye"} {
				if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					t.Fatal(err)
				}
				_, got, err := conn.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != c.want+msg {
					t.Errorf("echo %.60q, want %.60q", got, c.want+msg)
				}
			}
			if err := conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	if !e.accessLogHas(`"status":101`) {
		t.Errorf("access log without the 101: %s", e.access.String())
	}
}

// TestGRPC: gRPC through the ingress: the client speaks HTTP/2 over TLS
// (ALPN h2) to the HTTPS listener; backend-protocol GRPC makes the proxy
// speak HTTP/2 with prior knowledge (h2c) to the endpoint. grpc-go's
// health service answers a unary call (with status carried in trailers)
// and a server stream.
func TestGRPC(t *testing.T) {
	s := newStore(t)
	e := startController(t, s, nil)
	e.create(classObj("switchboard", true))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	t.Cleanup(gs.Stop)
	go gs.Serve(ln)

	secret, _ := tlsSecretObj(t, "shop", "grpc-tls", "grpc.test")
	ing := annotated(ingressObj("shop", "grpc", "grpc.test", pathRule("Prefix", "/grpc.health.v1.Health", "cart", 80)), annotations.BackendProtocol, "GRPC")
	ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"grpc.test"}, SecretName: "grpc-tls"}}
	plain := annotated(ingressObj("shop", "grpc-plain", "grpc-plain.test", pathRule("Prefix", "/", "cart", 80)), annotations.BackendProtocol, "GRPC")
	e.create(secret, serviceObj("shop", "cart"), sliceObj("shop", "cart", "cart", int32(ln.Addr().(*net.TCPAddr).Port), "127.0.0.1"), ing, plain)
	e.settle()

	for _, c := range []struct {
		name, addr, authority string
		creds                 credentials.TransportCredentials
	}{
		{"HTTP/2 over TLS", e.https, "grpc.test", credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "grpc.test"})},
		{"h2c (prior knowledge) on the plain listener", e.http, "grpc-plain.test", insecure.NewCredentials()},
	} {
		t.Run(c.name, func(t *testing.T) { grpcHealthChecks(t, e, hs, c.addr, c.authority, c.creds) })
	}
}

func grpcHealthChecks(t *testing.T, e *env, hs *health.Server, addr, authority string, creds credentials.TransportCredentials) {
	hs.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_SERVING)
	cc, err := grpc.NewClient("passthrough:///"+authority,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return dialTo(addr)(ctx, "tcp", "") }),
		grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	client := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cases := []struct {
		service string
		want    healthpb.HealthCheckResponse_ServingStatus
		code    codes.Code
	}{
		{"shop.Cart", healthpb.HealthCheckResponse_SERVING, codes.OK},
		{"", healthpb.HealthCheckResponse_SERVING, codes.OK},
		// "If the requested service is unknown, the call will fail with
		// status NOT_FOUND" (grpc health checking protocol): the status
		// travels in HTTP/2 trailers, which the proxy must pass.
		{"shop.Unknown", 0, codes.NotFound},
	}
	for _, c := range cases {
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: c.service})
		if status.Code(err) != c.code {
			t.Errorf("Check(%q): %v, want code %v", c.service, err, c.code)
			continue
		}
		if err == nil && resp.Status != c.want {
			t.Errorf("Check(%q) = %v, want %v", c.service, resp.Status, c.want)
		}
	}

	// A server stream: Watch sends the current status, then each change.
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "shop.Cart"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first: %v, %v", first, err)
	}
	hs.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_NOT_SERVING)
	second, err := stream.Recv()
	if err != nil || second.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch after the change: %v, %v (the proxy must stream, not buffer)", second, err)
	}
	if !e.accessLogHas(`"protocol":"HTTP/2.0"`, `"service":"cart"`) {
		t.Errorf("access log without the HTTP/2 gRPC requests: %s", e.access.String())
	}
}
