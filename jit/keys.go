package jit

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The files of a key directory, as [Keys.Write] and samljit keygen write
// them and [LoadKeys] reads them.
const (
	keyFile         = "sp-key.pem"
	certificateFile = "sp-cert.pem"
	sessionKeysFile = "session-keys"
)

// ErrInsecureKeyFile means a private key file can be read or written by
// other users than its owner; [LoadKeys] refuses it, as ssh does.
var ErrInsecureKeyFile = errors.New("jit: key file is accessible to other users")

// Keys are a deployment's secrets: the SP key pair ([Options.Key] and
// [Options.Certificate]) and the session keys ([Options.SessionKeys]).
// Every instance of an application must share them.
type Keys struct {
	Key         *rsa.PrivateKey
	Certificate *x509.Certificate
	SessionKeys [][]byte
}

// GenerateKeys returns new keys: an RSA-3072 SP key with a self-signed
// certificate for commonName, valid for ten years from now (IdPs trust the
// certificate in the SP metadata, not a CA), and one session key pair, a
// 32-byte authentication key and a 32-byte AES-256 encryption key.
func GenerateKeys(commonName string) (*Keys, error) {
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return nil, fmt.Errorf("jit: generate the SP key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("jit: generate a serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("jit: create the SP certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("jit: create the SP certificate: %w", err)
	}
	auth, enc := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(auth) // crypto/rand.Read never fails
	_, _ = rand.Read(enc)
	return &Keys{Key: key, Certificate: cert, SessionKeys: [][]byte{auth, enc}}, nil
}

// Write writes the keys into dir, creating it (mode 0700) if needed:
//
//   - sp-key.pem, the SP's private key, PEM PKCS #8, mode 0600;
//   - sp-cert.pem, its self-signed certificate, PEM, mode 0644 (it is
//     public, in the SP metadata);
//   - session-keys, [Options.SessionKeys], one base64 key per line in
//     their order (authentication key, encryption key, then older pairs;
//     blank lines and lines starting with # are ignored), mode 0600.
//
// It never overwrites:
// if any of the files exists, it writes nothing and returns an error
// wrapping [os.ErrExist].
func (k *Keys) Write(dir string) error {
	if k.Key == nil || k.Certificate == nil || len(k.SessionKeys) == 0 {
		return errors.New("jit: write keys: key, certificate and session keys are all required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("jit: write keys: %w", err)
	}
	for _, name := range []string{keyFile, certificateFile, sessionKeysFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("jit: write keys: %s: %w (move it away to make new keys)", filepath.Join(dir, name), os.ErrExist)
		}
	}
	pk, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return fmt.Errorf("jit: write keys: %w", err)
	}
	var sk bytes.Buffer
	sk.WriteString("# samljit session keys (Options.SessionKeys), newest pair first: authentication key, then encryption key.\n")
	sk.WriteString("# To rotate, add a new pair at the top and keep the old one until its sessions have expired.\n")
	for _, b := range k.SessionKeys {
		sk.WriteString(base64.StdEncoding.EncodeToString(b) + "\n")
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600},
		{certificateFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Certificate.Raw}), 0o644},
		{sessionKeysFile, sk.Bytes(), 0o600},
	}
	for _, f := range files {
		if err := writeNew(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("jit: write keys: %w", err)
		}
	}
	return nil
}

// writeNew creates path with mode, failing if it exists.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// LoadKeys reads the keys [Keys.Write] (or samljit keygen) wrote into dir.
// The private files, sp-key.pem and session-keys, must not be
// accessible to other users ([ErrInsecureKeyFile]); the key must be RSA
// and match the certificate; the session keys must have the sizes
// [Options.SessionKeys] takes. Every error names the file.
func LoadKeys(dir string) (*Keys, error) {
	keyPEM, err := readPrivate(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, certificateFile))
	if err != nil {
		return nil, fmt.Errorf("jit: load keys: %w", err)
	}
	key, cert, err := ParseKeyPair(keyPEM, certPEM)
	if err != nil {
		return nil, fmt.Errorf("jit: load keys from %s: %w", dir, err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("jit: load keys: %s: not an RSA key", filepath.Join(dir, keyFile))
	}
	path := filepath.Join(dir, sessionKeysFile)
	raw, err := readPrivate(path)
	if err != nil {
		return nil, err
	}
	var session [][]byte
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("jit: load keys: %s line %d: not base64: %w", path, n, err)
		}
		// Authentication keys come first in each pair; encryption keys
		// are AES keys.
		if len(session)%2 == 0 && len(b) != 32 && len(b) != 64 {
			return nil, fmt.Errorf("jit: load keys: %s line %d: an authentication key is 32 or 64 bytes, not %d", path, n, len(b))
		}
		if len(session)%2 == 1 && len(b) != 16 && len(b) != 24 && len(b) != 32 {
			return nil, fmt.Errorf("jit: load keys: %s line %d: an encryption key is 16, 24 or 32 bytes, not %d", path, n, len(b))
		}
		session = append(session, b)
	}
	if len(session) == 0 {
		return nil, fmt.Errorf("jit: load keys: %s holds no key", path)
	}
	return &Keys{Key: rk, Certificate: cert, SessionKeys: session}, nil
}

// readPrivate reads a private key file, refusing one that other users
// can access.
func readPrivate(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("jit: load keys: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; chmod 600 it", ErrInsecureKeyFile, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jit: load keys: %w", err)
	}
	return b, nil
}

// ParseKeyPair parses a PEM private key (PKCS #8, PKCS #1 or SEC 1) and a
// PEM certificate, and checks that they belong together.
func ParseKeyPair(keyPEM, certPEM []byte) (crypto.Signer, *x509.Certificate, error) {
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, errors.New("the private key is not PEM")
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, errors.New("the certificate is not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("the certificate: %w", err)
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
			if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
				return nil, nil, errors.New("the private key is not PKCS #8, PKCS #1 or SEC 1")
			}
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("the private key cannot sign")
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("the private key does not match the certificate")
	}
	return signer, cert, nil
}
