package sticky

// A tagged sid is TAG (TagLen chars) + CHECK (1 char) + "." + SID, all in the base64url alphabet
// except the dot. TAG names the backend, CHECK is computed from TAG and SID so that an untagged sid
// that happens to have the same shape is taken for a tagged one only with probability 1/64, and any
// single-character change of TAG is always rejected.

// TagLen is the length of a backend tag.
const TagLen = 3

// taggedOverhead is what AppendTagged adds to a sid: the tag, the check char and the dot.
const taggedOverhead = TagLen + 2

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// alphaIndex maps a byte to its base64url value, or -1.
var alphaIndex = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv1a continues an FNV-1a 64 hash h over b.
func fnv1a[T string | []byte](h uint64, b T) uint64 {
	for i := 0; i < len(b); i++ {
		h ^= uint64(b[i])
		h *= fnvPrime
	}
	return h
}

// fold mixes the high bits of a 64-bit hash into the low ones.
func fold(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

// TagFor returns the TagLen-char base64url tag of a backend id (FNV-1a 64, folded). The same id
// always gives the same tag, in every process.
func TagFor(backendID string) string {
	h := fold(fnv1a(fnvOffset, backendID))
	return string([]byte{alphabet[h&63], alphabet[(h>>6)&63], alphabet[(h>>12)&63]})
}

// validTag reports whether tag is TagLen base64url chars.
func validTag[T string | []byte](tag T) bool {
	if len(tag) != TagLen {
		return false
	}
	for i := 0; i < TagLen; i++ {
		if alphaIndex[tag[i]] < 0 {
			return false
		}
	}
	return true
}

// checkChar computes the check character of a tag and a sid. The tag enters as a weighted sum with
// odd weights (so changing one tag char always changes the result mod 64); the sid enters hashed.
func checkChar[T string | []byte](tag T, sid []byte) byte {
	sum := uint64(alphaIndex[tag[0]]) + 3*uint64(alphaIndex[tag[1]]) + 5*uint64(alphaIndex[tag[2]])
	h := fold(fnv1a(fnvOffset^0x5f5f, sid))
	return alphabet[(sum+h)&63]
}

// AppendTagged appends TAG + CHECK + "." + sid to dst. tag must be TagLen base64url chars (as
// returned by TagFor); otherwise the sid is appended untagged.
func AppendTagged(dst []byte, tag string, sid []byte) []byte {
	if !validTag(tag) {
		return append(dst, sid...)
	}
	dst = append(dst, tag...)
	dst = append(dst, checkChar(tag, sid), '.')
	return append(dst, sid...)
}

// SplitTagged splits a tagged sid into its tag and the raw sid. ok is true only if sid has the
// tagged shape (TagLen base64url chars, a check char, a dot, a non-empty rest) and the check char
// matches. The results alias sid. It does not allocate.
func SplitTagged(sid []byte) (tag, raw []byte, ok bool) {
	if len(sid) <= taggedOverhead || sid[taggedOverhead-1] != '.' {
		return nil, nil, false
	}
	tag = sid[:TagLen:TagLen]
	if !validTag(tag) {
		return nil, nil, false
	}
	raw = sid[taggedOverhead:]
	if sid[TagLen] != checkChar(tag, raw) {
		return nil, nil, false
	}
	return tag, raw, true
}
