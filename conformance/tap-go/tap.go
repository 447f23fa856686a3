// Package tap provides the subset of the github.com/mndrix/tap-go API that the
// OCI runtime-tools validation suite calls (New, Header, Ok, Pass, Fail, Skip,
// Todo, Diagnostic, Diagnosticf, YAML, AutoPlan, Count), producing TAP version 13.
// tap-go is not packaged in Debian; Ketch's conformance harness builds the
// suite against this package instead. YAML blocks are written as indented
// JSON, which is valid YAML.
package tap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// T is a TAP producer. Writer defaults to os.Stdout; when TODO is true, test
// points carry the TODO directive.
type T struct {
	next   *int // shared with the producers Todo returns
	TODO   bool
	Writer io.Writer
}

// New returns a producer whose first test point is number 1.
func New() *T {
	first := 1
	return &T{next: &first}
}

// Todo returns a producer that numbers test points together with t and marks
// them TODO (a failing TODO point is not a failure).
func (t *T) Todo() *T {
	return &T{next: t.next, TODO: true, Writer: t.Writer}
}

func (t *T) w() io.Writer {
	if t.Writer != nil {
		return t.Writer
	}
	return os.Stdout
}

func (t *T) printf(format string, args ...interface{}) {
	fmt.Fprintf(t.w(), format, args...)
}

// Header starts the document; a positive count is printed as the plan.
func (t *T) Header(count int) {
	t.printf("TAP version 13\n")
	if count > 0 {
		t.printf("1..%d\n", count)
	}
}

// Ok records one test point that passed when ok is true.
func (t *T) Ok(ok bool, description string) {
	word := "ok"
	if !ok {
		word = "not ok"
	}
	if t.TODO {
		t.printf("%s %d # TODO %s\n", word, *t.next, description)
	} else {
		t.printf("%s %d - %s\n", word, *t.next, description)
	}
	*t.next++
}

// Pass records a passing test point.
func (t *T) Pass(description string) { t.Ok(true, description) }

// Fail records a failing test point.
func (t *T) Fail(description string) { t.Ok(false, description) }

// Skip records count skipped test points.
func (t *T) Skip(count int, description string) {
	for i := 0; i < count; i++ {
		t.printf("ok %d # SKIP %s\n", *t.next, description)
		*t.next++
	}
}

// Count is the number of test points recorded so far.
func (t *T) Count() int { return *t.next - 1 }

// AutoPlan prints the plan for the test points recorded so far.
func (t *T) AutoPlan() { t.printf("1..%d\n", t.Count()) }

// Diagnostic prints message as "# " comment lines.
func (t *T) Diagnostic(message string) {
	t.printf("# %s\n", strings.ReplaceAll(strings.TrimRight(message, "\n"), "\n", "\n# "))
}

// Diagnosticf is Diagnostic with fmt.Sprintf formatting.
func (t *T) Diagnosticf(format string, args ...interface{}) {
	t.Diagnostic(fmt.Sprintf(format, args...))
}

// YAML attaches a structured diagnostic block to the previous test point.
func (t *T) YAML(message interface{}) error {
	data, err := json.MarshalIndent(message, "  ", "  ")
	if err != nil {
		return err
	}
	t.printf("  ---\n  %s\n  ...\n", data)
	return nil
}
