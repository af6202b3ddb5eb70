package sigctx

import (
	"syscall"
	"testing"
	"time"
)

func TestFirstSignalCancels(t *testing.T) {
	ctx, stop := Context()
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not cancel the context")
	}
}

func TestStopCancelsAndIsIdempotent(t *testing.T) {
	ctx, stop := Context()
	stop()
	stop()
	if ctx.Err() == nil {
		t.Fatal("stop did not cancel the context")
	}
}
