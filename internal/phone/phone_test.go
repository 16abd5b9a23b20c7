package phone

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestE164(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, cc, want string
	}{
		{"+919711636496", "", "+919711636496"},
		{"919711636496", "", "+919711636496"},
		{"09711636496", "", "+919711636496"},
		{"9711636496", "", "+919711636496"},
		{"9711636496", "+44", "+449711636496"},
		{" +91 97116-36496 ", "", "+919711636496"},
		{"(971) 163-6496", "91", "+919711636496"},
		{"0091 9711636496", "", "+919711636496"},
		{"01123456789", "", "+911123456789"}, // Delhi landline with trunk 0
		{"14155550100", "", "+14155550100"},  // already carries a country code
		{"+1 415 555 0100", "", "+14155550100"},
		{"", "", ""},
		{"   ", "", ""},
		{"unknown", "", ""},
		{"anonymous", "", ""},
		{"10", "", ""},        // an extension
		{"971163649", "", ""}, // 9 digits
		{"+0919711636496", "", ""},
		{"+91+9711636496", "", ""},
		{"97116364961234567", "", ""}, // too long
		{"0123", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, E164(tt.raw, tt.cc))
		})
	}
}

func TestVariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"+919711636496", []string{"+919711636496", "919711636496", "09711636496", "9711636496"}},
		{"9711636496", []string{"+919711636496", "919711636496", "09711636496", "9711636496"}},
		{"+14155550100", []string{"+14155550100", "14155550100", "4155550100"}},
		{"+442071838750", []string{"+442071838750", "442071838750", "02071838750", "2071838750"}},
		{"+97142345678", []string{"+97142345678", "97142345678", "042345678", "42345678"}},
		{"", nil},
		{"unknown", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, Variants(tt.in))
		})
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"+919711636496", "+91******6496"},
		{"9711636496", "******6496"},
		{"12345678", "****5678"},
		{"1234567", "*******"},
		{"+1234567", "********"},
		{"", ""},
		{"+", "*"},
		{"\xff\xfe", "**"},
		{"अनाम नंबर वाला", "**********वाला"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, Mask(tt.in))
		})
	}
}

func FuzzE164(f *testing.F) {
	for _, s := range []string{"+919711636496", "09711636496", "unknown", "0091 97116", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := E164(s, "")
		if e == "" {
			return
		}
		// Normalising is idempotent and the variants always lead with the E.164 form.
		assert.Equal(t, e, E164(e, ""))
		v := Variants(e)
		if assert.NotEmpty(t, v) {
			assert.Equal(t, e, v[0])
		}
		_ = Mask(s)
	})
}

func TestE164BadCountryCode(t *testing.T) {
	for _, cc := range []string{"00", "0", "12345", "9999"} {
		got := E164("9711636496", cc)
		if got != "+919711636496" {
			t.Errorf("E164(9711636496, %q) = %q, want the default country code", cc, got)
		}
	}
}

// Possible refuses what E164 lets through but no number of the country code has.
func TestPossible(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		e164, want string // want: the error's words, "" when possible
	}{
		{"+919711636496", ""},
		{"+14155550100", ""},
		{"+442079460958", ""},
		{"+79123456789", ""},
		{"+1900555", "too short for country code +1"},
		{"+7912345678", "too short for country code +7"},
		{"+12125551234567", "too long for country code +1"},
		{"+9197116364961234", "too long for country code +91"},
		{"+999123456", "no country has its calling code"},
		{"", "not a phone number"},
	} {
		t.Run(tt.e164, func(t *testing.T) {
			t.Parallel()
			err := Possible(tt.e164)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ErrImpossible)
			assert.EqualError(t, err, tt.want)
		})
	}
}
