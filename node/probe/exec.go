package probe

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// errNoExec is the handler error for an exec probe on a target that cannot
// run commands.
var errNoExec = errors.New("exec probes are not supported for this container: no command runner")

// execProbe runs cmd through t.Exec with a context carrying the probe's
// timeout, as kubelet's exec prober over the CRI's ExecSync:
//   - exit code 0 is a success; the output is kept (first 10 KiB);
//   - a non-zero exit code is a failure whose message is the output;
//   - running past timeoutSeconds is a failure "command \"...\" timed out"
//     (kubelet's ExecProbeTimeout, GA since 1.20);
//   - any other error means the command could not be run: unknown, with
//     the error.
func execProbe(ctx context.Context, t Target, cmd []string, timeout time.Duration) (outcome, string, error) {
	if t.Exec == nil {
		return outcomeUnknown, "", errNoExec
	}
	if len(cmd) == 0 {
		return outcomeUnknown, "", errors.New("exec probe has an empty command")
	}
	ectx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, code, err := t.Exec(ectx, cmd)
	data := string(limitBytes(out))
	if err == nil && code == 0 {
		return outcomeSuccess, data, nil
	}
	if isDeadline(ectx.Err()) && ctx.Err() == nil {
		// kubelet's remote runtime turns a DeadlineExceeded ExecSync into
		// exec.NewTimeoutError(fmt.Errorf("command %q timed out", ...)).
		return outcomeFailure, fmt.Sprintf("command %q timed out", strings.Join(cmd, " ")), nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if exitErr.ExitCode() == 0 {
			return outcomeSuccess, data, nil
		}
		return outcomeFailure, data, nil
	}
	if err == nil || code > 0 {
		// The command ran and exited non-zero (err, if any, says so).
		return outcomeFailure, data, nil
	}
	return outcomeUnknown, "", err
}
