package demo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/spf13/cobra"
)

// EchoConfig configures the TCP and UDP echo servers.
type EchoConfig struct {
	Addr     string              // host:port; port 0 picks one
	Logger   *slog.Logger        // nil: slog.Default()
	OnListen func(addr net.Addr) // called once the listener is open
}

// RunTCPEcho echoes every connection's bytes back to it until ctx ends;
// then it closes the listener and every connection and returns nil.
func RunTCPEcho(ctx context.Context, cfg EchoConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	log.Info("demo tcp-echo listening", "addr", ln.Addr().String())
	if cfg.OnListen != nil {
		cfg.OnListen(ln.Addr())
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	defer func() {
		close(stopped)
		wg.Wait()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				log.Info("shutting down")
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			_ = c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			remote := c.RemoteAddr().String()
			log.Info("connection", "remote", remote)
			n, err := io.Copy(c, c)
			_ = c.Close()
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			attrs := []any{"remote", remote, "bytes", n}
			if err != nil && ctx.Err() == nil {
				attrs = append(attrs, "err", err)
			}
			log.Info("connection closed", attrs...)
		}()
	}
}

// RunUDPEcho sends every datagram back to its sender until ctx ends; then
// it returns nil.
func RunUDPEcho(ctx context.Context, cfg EchoConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	pc, err := net.ListenPacket("udp", cfg.Addr)
	if err != nil {
		return err
	}
	log.Info("demo udp-echo listening", "addr", pc.LocalAddr().String())
	if cfg.OnListen != nil {
		cfg.OnListen(pc.LocalAddr())
	}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		_ = pc.Close()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				log.Info("shutting down")
				return nil
			}
			return err
		}
		if _, err := pc.WriteTo(buf[:n], from); err != nil {
			log.Warn("echo failed", "remote", from.String(), "err", err)
			continue
		}
		log.Info("datagram", "remote", from.String(), "bytes", n)
	}
}

func newTCPEchoCommand() *cobra.Command {
	return echoCommand("tcp-echo", "Echo every TCP connection's bytes back to it", 9000, RunTCPEcho)
}

func newUDPEchoCommand() *cobra.Command {
	return echoCommand("udp-echo", "Echo every UDP datagram back to its sender", 9001, RunUDPEcho)
}

func echoCommand(use, short string, defPort int, run func(context.Context, EchoConfig) error) *cobra.Command {
	var (
		host string
		port int
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := hostPort(host, port)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			return run(ctx, EchoConfig{Addr: addr, Logger: newLogger(cmd.OutOrStdout())})
		},
	}
	addrFlags(cmd, &host, &port, defPort)
	return cmd
}
