package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// NewCommands returns the get, apply, delete, describe, logs and exec
// commands.
// opts points at the root command's persistent flags. Each command prints
// its results to out and its errors, in kubectl's words, to errOut; a
// failed command returns an error wrapping ErrReported (already printed:
// exit with status 1 without printing it again), and sets SilenceErrors
// and SilenceUsage so cobra prints nothing more for runtime errors.
func NewCommands(opts *Options, out, errOut io.Writer) []*cobra.Command {
	if opts == nil {
		opts = &Options{}
	}
	return []*cobra.Command{
		newGetCommand(opts, out, errOut),
		newApplyCommand(opts, out, errOut),
		newDeleteCommand(opts, out, errOut),
		newDescribeCommand(opts, out, errOut),
		newLogsCommand(opts, out, errOut),
		newExecCommand(opts, out, errOut),
	}
}
