package acl

import (
	"errors"
	"io"
	"log/slog"
	"net"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func asNetError(err error, target *net.Error) bool { return errors.As(err, target) }
