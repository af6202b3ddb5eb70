package probe

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestExec(t *testing.T) {
	t.Parallel()
	c := &corev1.Container{Name: "app", Env: []corev1.EnvVar{
		{Name: "GREETING", Value: "hi"},
		{Name: "FROM", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}}
	cases := []struct {
		name   string
		cmd    []string
		exec   func(context.Context, []string) ([]byte, int, error)
		noExec bool
		want   Result
		msg    string
	}{
		{name: "exit code 0 is success, the output is kept", cmd: []string{"sh", "-c", "echo ok"}, want: Success, msg: "ok\n"},
		{name: "a non-zero exit code is failure with the output", cmd: []string{"sh", "-c", "echo bad >&2; exit 3"}, want: Failure, msg: "bad\n"},
		{name: "running past timeoutSeconds is failure: command timed out", cmd: []string{"sh", "-c", "sleep 30"},
			want: Failure, msg: `command "sh -c sleep 30" timed out`},
		{name: "output is kept up to 10KiB", cmd: []string{"sh", "-c", "head -c 20000 /dev/zero | tr '\\0' y; exit 1"},
			want: Failure, msg: strings.Repeat("y", 10<<10)},
		{name: "$(VAR) expands literal env values only; $$ escapes; unresolved references stay",
			cmd:  []string{"sh", "-c", `printf '%s|%s|%s' "$1" "$2" "$3"`, "sh", "$(GREETING)", "$(FROM)", "$$(GREETING)"},
			want: Success, msg: "hi|$(FROM)|$(GREETING)"},
		{name: "a command that cannot start is an error", cmd: []string{"/nonexistent/probe-cmd"},
			want: Failure, msg: `fork/exec /nonexistent/probe-cmd: no such file or directory`},
		{name: "a runner reporting a non-zero exit code with an error is a failure with the output", cmd: []string{"sh", "-c", "echo out; exit 2"},
			exec: func(ctx context.Context, cmd []string) ([]byte, int, error) {
				out, code, _ := shExec(ctx, cmd)
				return out, code, errors.New("exit status 2")
			},
			want: Failure, msg: "out\n"},
		{name: "no command runner is an error", cmd: []string{"true"}, noExec: true,
			want: Failure, msg: errNoExec.Error()},
		{name: "a panicking runner does not panic the prober", cmd: []string{"true"},
			exec: func(context.Context, []string) ([]byte, int, error) { panic("boom") },
			want: Failure, msg: "probe handler panicked: boom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: tc.cmd}}, TimeoutSeconds: 1}
			target := Target{Pod: testPod(), Container: c, Exec: shExec}
			if tc.exec != nil {
				target.Exec = tc.exec
			}
			if tc.noExec {
				target.Exec = nil
			}
			got, msg := Run(context.Background(), p, target)
			if got != tc.want || msg != tc.msg {
				t.Fatalf("Run = %v %.100q, want %v %.100q", got, msg, tc.want, tc.msg)
			}
		})
	}
}

func TestExecErrorIsRetried(t *testing.T) {
	t.Parallel()
	// kubelet's runProbeWithRetries: an attempt whose handler errors (as
	// opposed to failing) is retried, up to maxProbeRetries = 3 times.
	var calls atomic.Int32
	p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, TimeoutSeconds: 1}
	got, msg := Run(context.Background(), p, Target{Exec: func(ctx context.Context, cmd []string) ([]byte, int, error) {
		if calls.Add(1) < 3 {
			return nil, -1, errors.New("runtime busy")
		}
		return shExec(ctx, cmd)
	}})
	if got != Success || calls.Load() != 3 {
		t.Fatalf("Run = %v %q after %d calls, want Success after 3", got, msg, calls.Load())
	}
}
