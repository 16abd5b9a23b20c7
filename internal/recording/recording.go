// Package recording serves durable call-recording links. MyOperator gives a call's
// recording as a file name whose download link expires after 24 h; a link pasted into a
// CRM would die the next day. calltrack writes its own, short link instead,
//
//	GET /r/{tenant}/{call_id}/{[expiry.]signature}
//
// signed (a truncated HMAC) so that it cannot be guessed or altered, and short enough for
// Zoho's 100-character Voice_Recording__s with a realistic public URL: it names the call,
// not the file. The file name is kept in Redis when the link is made (and found again in
// MyOperator's call log should Redis have lost it). On a click calltrack exchanges the
// file name for a fresh MyOperator link — cached in Redis for most of its validity and
// shared by every replica, as MyOperator rate-limits its pull APIs per account — and
// redirects there, to https only. HEAD (link checkers) is answered without asking
// MyOperator. Links can expire (a tenant's recordings.link_ttl; default never); the
// signing keys can rotate (the first key signs, every key verifies).
//
// Links of the earlier, long form, GET /recordings/{tenant}/{call_id}?file=&sig=, are
// still served.
package recording

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/calltrack/calltrack/internal/tenant"
	"github.com/calltrack/calltrack/internal/web"
)

// MinKeyLength is the shortest signing key accepted (CALLTRACK_RECORDING_SIGNING_KEYS).
const MinKeyLength = 16

// sigBytes is how much of the HMAC-SHA256 a short link carries: 96 bits (16 base64url
// characters), above RFC 2104's 80-bit floor; guessing costs one request per try.
const sigBytes = 12

// Signer makes and checks the links. The zero value signs nothing.
type Signer struct {
	BaseURL string          // calltrack's public base URL (CALLTRACK_PUBLIC_URL), no trailing slash
	Keys    []tenant.Secret // CALLTRACK_RECORDING_SIGNING_KEYS: the first signs, all verify
}

// Enabled reports whether links can be made: a base URL and long enough keys.
func (s Signer) Enabled() bool {
	if s.BaseURL == "" || len(s.Keys) == 0 {
		return false
	}
	for _, k := range s.Keys {
		if len(k.Reveal()) < MinKeyLength {
			return false
		}
	}
	return true
}

// mac is HMAC-SHA256 over the fields, each length-prefixed so that they cannot shift.
func mac(key tenant.Secret, fields ...string) []byte {
	m := hmac.New(sha256.New, []byte(key.Reveal()))
	for _, f := range fields {
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}

// verify tries every usable key: a link signed before a rotation still verifies.
func (s Signer) verify(sig []byte, trunc int, fields ...string) bool {
	if len(sig) == 0 {
		return false
	}
	for _, k := range s.Keys {
		if len(k.Reveal()) < MinKeyLength {
			continue
		}
		want := mac(k, fields...)
		if trunc > 0 {
			want = want[:trunc]
		}
		if hmac.Equal(sig, want) {
			return true
		}
	}
	return false
}

func (s Signer) base() string { return strings.TrimRight(s.BaseURL, "/") }

// URL is the short, durable link of a call's recording; expires zero: it never expires
// (else the link works until expires, rounded up to the hour). Its length is
// len(BaseURL) + len(tenant) + len(call id) + 21, plus 5 with an expiry: with a
// 21-character MyOperator uid, base URL and tenant id may have 58 characters together
// (53 with an expiry) for Zoho's 100.
func (s Signer) URL(tenantID, callID string, expires time.Time) string {
	if len(s.Keys) == 0 {
		return ""
	}
	token := ""
	exp := ""
	if !expires.IsZero() {
		// Whole hours since the epoch, rounded up, in base 36: 4 characters.
		exp = strconv.FormatInt((expires.Unix()+3599)/3600, 36)
		token = exp + "."
	}
	token += base64.RawURLEncoding.EncodeToString(mac(s.Keys[0], "calltrack recording v2", tenantID, callID, exp)[:sigBytes])
	return s.base() + web.SignedLinks + url.PathEscape(tenantID) + "/" + url.PathEscape(callID) + "/" + token
}

// TypicalCallIDLen is the length of a MyOperator call uid ("n2.1796042288.1000001" and the like).
const TypicalCallIDLen = 21

// LinkLen is the length of the links URL makes for a tenant and call ids of
// callIDLen characters; expiring: with an expiry (recordings.link_ttl).
func (s Signer) LinkLen(tenantID string, callIDLen int, expiring bool) int {
	n := len(s.base()) + len(web.SignedLinks) + len(url.PathEscape(tenantID)) + 1 + callIDLen + 1 + base64.RawURLEncoding.EncodedLen(sigBytes)
	if expiring {
		n += 5
	}
	return n
}

// VerifyURL checks a short link's token ("[expiry.]signature") and returns its expiry
// (zero: never).
func (s Signer) VerifyURL(tenantID, callID, token string) (time.Time, bool) {
	exp, sig, ok := strings.Cut(token, ".")
	if !ok {
		exp, sig = "", token
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(raw) != sigBytes {
		return time.Time{}, false
	}
	if !s.verify(raw, sigBytes, "calltrack recording v2", tenantID, callID, exp) {
		return time.Time{}, false
	}
	if exp == "" {
		return time.Time{}, true
	}
	h, err := strconv.ParseInt(exp, 36, 64)
	if err != nil || h > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(h*3600, 0), true
}

// LegacyURL is a link of the earlier, long form (with the file name and a whole HMAC),
// as CRM records written before short links hold them; calltrack still serves them.
func (s Signer) LegacyURL(tenantID, callID, file string) string {
	if len(s.Keys) == 0 {
		return ""
	}
	sig := base64.RawURLEncoding.EncodeToString(mac(s.Keys[0], "calltrack recording v1", tenantID, callID, file))
	q := url.Values{"file": {file}, "sig": {sig}}
	return s.base() + "/recordings/" + url.PathEscape(tenantID) + "/" + url.PathEscape(callID) + "?" + q.Encode()
}

// VerifyLegacy checks a long-form link's signature.
func (s Signer) VerifyLegacy(tenantID, callID, file, sig string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	return s.verify(raw, 0, "calltrack recording v1", tenantID, callID, file)
}
