// Command samljit is the samljit developer tool.
//
// Usage:
//
//	samljit <command> [flags]
//
// Commands:
//
//	connections  add, list, show, disable, enable and remove the connections
//	             an application keeps in its database, while it runs
//	explain      judge a captured SAMLResponse and print the decision trace
//	keygen       write a new SP key pair and session keys (files 0600)
//	loadtest     drive an in-process app's ACS over HTTP with signed responses
//
// Run "samljit <command> -h" for a command's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// command is a subcommand: its name, one-line summary and entry point.
type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"connections", "add|list|show|disable|enable|remove the connections an app keeps in its database (-db), live", runConnections},
	{"explain", "judge a captured SAMLResponse as a connection would and print the decision trace; writes nothing", runExplain},
	{"keygen", "write a new SP key pair and session keys into a directory, private files 0600", runKeygen},
	{"loadtest", "drive an in-process app's ACS over HTTP on 127.0.0.1 with distinct signed responses", runLoadtest},
}

func main() {
	if target := loadChild(); target != "" {
		os.Exit(runLoadChild(target, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args to a subcommand and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			var usage usageError
			switch {
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.As(err, &usage):
				fmt.Fprintf(stderr, "samljit %s: %v\n", c.name, err)
				return 2
			case errors.Is(err, refusedError{}):
				return 1
			case err != nil:
				fmt.Fprintf(stderr, "samljit %s: %v\n", c.name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "samljit: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: samljit <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "samljit <command> -h" for a command's flags.`)
}
