// Package phone normalises the phone numbers MyOperator and the CRMs exchange
// (E.164, with or without the plus, a trunk 0, or bare 10-digit national numbers),
// lists the forms a CRM search should try, and masks numbers for logs.
package phone

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// DefaultCountryCode is used when E164 is given no country code: MyOperator is Indian.
const DefaultCountryCode = "91"

// E164 normalises raw to E.164 ("+919711636496"). Spaces, dashes, dots, slashes and
// parentheses are ignored. A number with a leading + or 00 is taken as international;
// otherwise a trunk 0 is dropped and a 10-digit national number gets defaultCountryCode
// (DefaultCountryCode when empty); 11 to 15 digits are taken to carry a country code
// already. Anything else ("", "unknown", "anonymous", extensions) gives "".
func E164(raw, defaultCountryCode string) string {
	cc := digits(defaultCountryCode)
	if cc == "" || cc[0] == '0' || len(cc) > 3 {
		// A calling code is 1-3 digits and never starts with 0 (a payload's "_cy" may
		// carry anything).
		cc = DefaultCountryCode
	}
	// The digits gather on the stack, and the answer is the one allocation: ingest
	// normalises every webhook's numbers (a strings.Builder cost it five).
	var arr [24]byte
	d := arr[:0]
	plus := false
	for _, r := range strings.TrimSpace(raw) {
		switch {
		case r >= '0' && r <= '9':
			d = append(d, byte(r))
		case r == '+' && len(d) == 0 && !plus:
			plus = true
		case strings.ContainsRune(" \t-.()/", r):
		default:
			return ""
		}
	}
	if !plus && len(d) >= 2 && d[0] == '0' && d[1] == '0' {
		d, plus = d[2:], true
	}
	if plus {
		// Country codes never start with 0; E.164 allows at most 15 digits.
		if len(d) < 7 || len(d) > 15 || d[0] == '0' {
			return ""
		}
		return plusDigits("", d)
	}
	trunk := len(d) > 0 && d[0] == '0'
	if trunk {
		d = d[1:]
	}
	switch {
	case len(d) == 10 && len(cc)+10 <= 15:
		return plusDigits(cc, d)
	case len(d) == len(cc)+10 && string(d[:len(cc)]) == cc:
		return plusDigits("", d)
	case !trunk && len(d) > 10 && len(d) <= 15:
		return plusDigits("", d)
	}
	return ""
}

// ErrImpossible means a number cannot be a phone number: too short or too long for its
// country calling code, or a calling code no country has (Possible).
var ErrImpossible = errors.New("phone: impossible number")

// impossible is an ErrImpossible saying why, in words for an API's answer.
type impossible string

func (e impossible) Error() string { return string(e) }

// Is makes errors.Is(err, ErrImpossible) hold.
func (e impossible) Is(target error) bool { return target == ErrImpossible }

// Possible checks that an E.164 number ("+1900555") has a length some number of its
// country calling code has, by libphonenumber's metadata (nyaruka/phonenumbers): E164
// takes any 7 to 15 digits after a plus, which MyOperator's outbound API refuses when
// they cannot be a number there. A number without its area code (dialled only from
// within it) counts as too short. The error wraps ErrImpossible; nil when possible.
func Possible(e164 string) error {
	n, err := phonenumbers.Parse(e164, "")
	switch {
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		return impossible("no country has its calling code")
	case err != nil:
		return impossible("not a phone number")
	}
	cc := n.GetCountryCode()
	switch phonenumbers.IsPossibleNumberWithReason(n) {
	case phonenumbers.IS_POSSIBLE:
		return nil
	case phonenumbers.INVALID_COUNTRY_CODE:
		return impossible(fmt.Sprintf("+%d is no country's calling code", cc))
	case phonenumbers.TOO_SHORT, phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
		return impossible(fmt.Sprintf("too short for country code +%d", cc))
	case phonenumbers.TOO_LONG:
		return impossible(fmt.Sprintf("too long for country code +%d", cc))
	}
	return impossible(fmt.Sprintf("no number of country code +%d has that many digits", cc))
}

// plusDigits is "+" + cc + d in one allocation.
func plusDigits(cc string, d []byte) string {
	var arr [24]byte
	return string(append(append(append(arr[:0], '+'), cc...), d...))
}

// Variants lists the forms a CRM search should try for a number, most specific
// first and without duplicates: E.164 ("+919711636496"), with the country code but
// no plus ("919711636496"), national with a trunk 0 ("09711636496") and the bare
// subscriber number ("9711636496"). The trunk-0 form is left out for +1 (NANP
// has no trunk 0). A number that is not E.164 yet is normalised with
// DefaultCountryCode first; one that cannot be normalised gives nil.
func Variants(e164 string) []string {
	e := E164(e164, "")
	if e == "" {
		return nil
	}
	d := e[1:]
	cc := countryCode(d)
	nat := d[len(cc):]
	out := []string{e, d}
	if cc != "1" && nat != "" {
		out = append(out, "0"+nat)
	}
	if nat != "" {
		out = append(out, nat)
	}
	seen := make(map[string]bool, len(out))
	uniq := out[:0]
	for _, v := range out {
		if !seen[v] {
			seen[v] = true
			uniq = append(uniq, v)
		}
	}
	return uniq
}

// Split returns the country calling code and the national number of a number
// ("+919711636496" → "91", "9711636496"); empty strings when it is not E.164.
func Split(e164 string) (code, national string) {
	e := E164(e164, "")
	if e == "" {
		return "", ""
	}
	code = countryCode(e[1:])
	return code, e[1+len(code):]
}

// Readable writes a number as people read it: an Indian number grouped
// ("+91 97116 36496"), others as E.164; a non-number is "an unknown number".
func Readable(n string) string {
	switch {
	case n == "" || !strings.HasPrefix(n, "+"):
		return "an unknown number"
	case strings.HasPrefix(n, "+91") && len(n) == 13:
		return "+91 " + n[3:8] + " " + n[8:]
	}
	return n
}

// Mask hides a number for logs: it keeps a leading "+" with the two characters
// after it and the last four characters ("+919711636496" → "+91******6496").
// Strings too short to hide at least four characters are masked entirely.
// It works on any string.
func Mask(s string) string {
	r := []rune(s)
	keep := 0
	if len(r) > 0 && r[0] == '+' {
		keep = 3
	}
	if len(r)-keep-4 < 4 {
		return strings.Repeat("*", len(r))
	}
	for i := keep; i < len(r)-4; i++ {
		r[i] = '*'
	}
	return string(r)
}

// Epoch tells seconds or milliseconds since 1970 (10 or 13 digits from 1) from numbers.
func Epoch(s string) bool {
	return (len(s) == 10 || len(s) == 13) && s[0] == '1'
}

// digitRun is a run of 10-15 digits, after a + or a URL-encoded character (a form
// body's %2B is a plus, its %22 a quote: neither is part of the number).
var digitRun = regexp.MustCompile(`(%[0-9A-Fa-f]{2}|\+)?\d{10,15}`)

// MaskText masks, with Mask, the runs of 10-15 digits in free text (a form body, a
// value quoted in an error message) that may be phone numbers; epoch timestamps are
// kept.
func MaskText(s string) string {
	return digitRun.ReplaceAllStringFunc(s, func(m string) string {
		prefix := ""
		switch {
		case strings.HasPrefix(m, "+"):
			return Mask(m)
		case strings.EqualFold(m[:min(3, len(m))], "%2B"):
			return m[:3] + Mask("+" + m[3:])[1:]
		case strings.HasPrefix(m, "%"):
			prefix, m = m[:3], m[3:]
		}
		if Epoch(m) {
			return prefix + m
		}
		return prefix + Mask(m)
	})
}

func digits(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		return s // already digits (a tenant's country code): no copy
	}
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// twoDigitCodes are the ITU country calling codes of two digits; 1 and 7 are the
// one-digit codes and every other code has three digits (codes are prefix-free).
const twoDigitCodes = " 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58" +
	" 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98 "

// countryCode returns the country calling code d (E.164 digits, no plus) starts with.
func countryCode(d string) string {
	switch {
	case d == "":
		return ""
	case d[0] == '1' || d[0] == '7':
		return d[:1]
	case len(d) >= 2 && strings.Contains(twoDigitCodes, " "+d[:2]+" "):
		return d[:2]
	case len(d) >= 3:
		return d[:3]
	}
	return d
}
