package projection

import (
	"fmt"
	"strings"
	"unicode"
)

// MaxSearchLength is the longest search a query may ask for, in bytes.
const MaxSearchLength = 500

// searchTerm is a word or phrase of a search, or an OR between two.
type searchTerm struct {
	text    string
	not, or bool
}

// parseSearch reads what a user typed in a search box: words, "quoted
// phrases", -excluded words or phrases and OR. Nothing in it is syntax to
// the database: terms are quoted or handed to a parser that cannot fail.
// It fails with ErrInvalid when no term has a letter or a digit to match.
func parseSearch(q string) ([]searchTerm, error) {
	if len(q) > MaxSearchLength {
		return nil, fmt.Errorf("q: %w: longer than %d bytes", ErrInvalid, MaxSearchLength)
	}
	var terms []searchTerm
	positive := 0
	rest := strings.TrimSpace(q)
	for rest != "" {
		not := false
		if rest[0] == '-' {
			not, rest = true, rest[1:]
		}
		var text string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				text, rest = rest[1:], ""
			} else {
				text, rest = rest[1:1+end], rest[2+end:]
			}
		} else {
			end := strings.IndexFunc(rest, unicode.IsSpace)
			if end < 0 {
				end = len(rest)
			}
			text, rest = rest[:end], rest[end:]
		}
		rest = strings.TrimSpace(rest)
		switch {
		case !not && text == "OR":
			if len(terms) > 0 && !terms[len(terms)-1].or && !terms[len(terms)-1].not {
				terms = append(terms, searchTerm{or: true})
			}
		case !strings.ContainsFunc(text, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }):
		default:
			if not && len(terms) > 0 && terms[len(terms)-1].or {
				terms = terms[:len(terms)-1]
			}
			terms = append(terms, searchTerm{text: text, not: not})
			if !not {
				positive++
			}
		}
	}
	if n := len(terms); n > 0 && terms[n-1].or {
		terms = terms[:n-1]
	}
	if positive == 0 {
		return nil, fmt.Errorf("q: %w: nothing to search for (give a word with a letter or a digit)", ErrInvalid)
	}
	return terms, nil
}
