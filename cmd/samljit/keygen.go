package main

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/samljit/samljit/jit"
)

const keygenUsage = `Usage: samljit keygen [flags]

Writes new keys for a samljit deployment into a directory:
  sp-key.pem    the SP's private key (RSA-3072, PEM), mode 0600
  sp-cert.pem   its self-signed certificate, published in the SP metadata
  session-keys  the session keys (Options.SessionKeys), mode 0600
It never overwrites an existing file. Load them with jit.LoadKeys(dir).
Every instance of an application must share the same keys; keep them out
of version control.

Flags:
`

func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, keygenUsage)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "samljit-keys", "the directory to write the keys into (created with mode 0700)")
	cn := fs.String("cn", "samljit SP", "the certificate's common name, e.g. your application's host name")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	keys, err := jit.GenerateKeys(*cn)
	if err != nil {
		return err
	}
	if err := keys.Write(*dir); err != nil {
		return err
	}
	sum := sha256.Sum256(keys.Certificate.Raw)
	fp := make([]string, len(sum))
	for i, b := range sum {
		fp[i] = fmt.Sprintf("%02X", b)
	}
	fmt.Fprintf(stdout, "Wrote %s, %s and %s.\n", filepath.Join(*dir, "sp-key.pem"), filepath.Join(*dir, "sp-cert.pem"), filepath.Join(*dir, "session-keys"))
	fmt.Fprintf(stdout, "SP certificate: CN=%s, valid until %s, SHA-256 %s\n", *cn, keys.Certificate.NotAfter.Format("2006-01-02"), strings.Join(fp, ":"))
	fmt.Fprintf(stdout, "Load them with jit.LoadKeys(%q); keep the directory private and out of version control.\n", *dir)
	return nil
}
