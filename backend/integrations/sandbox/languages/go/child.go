package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

var errorType = reflect.TypeOf((*error)(nil)).Elem()

// Run is called by dispatch.go's init, after the submission's own initialisation: in a call child it
// runs the one test and exits; otherwise (a program child) it returns, and the submission's main runs.
func Run(functions map[string]any) {
	if mode != "call" {
		return
	}
	var test testInput
	started := time.Now()
	report := func(fields map[string]any) {
		fields["ms"] = float64(time.Since(started).Microseconds()) / 1000
		line, err := json.Marshal(fields)
		if err != nil {
			line, _ = json.Marshal(map[string]any{"error": "the returned value could not be encoded"})
		}
		results.Write(line)
		os.Exit(0)
	}
	if err := json.Unmarshal(testData, &test); err != nil {
		report(map[string]any{"error": "the harness could not read its test"})
	}
	value, err := call(functions, test)
	if err != nil {
		report(map[string]any{"error": err.Error()})
	}
	report(map[string]any{"value": value})
}

// limitMemory lets the garbage collector work harder near the sandbox's RLIMIT_DATA, rather than fail.
func limitMemory() {
	var limit syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_DATA, &limit) == nil && limit.Cur > 0 && limit.Cur < 1<<40 {
		debug.SetMemoryLimit(int64(limit.Cur) / 4 * 3)
	}
	debug.SetMaxStack(64 << 20)
}

type callError struct{ message string }

func (e callError) Error() string { return e.message }

func call(functions map[string]any, test testInput) (value any, err error) {
	defer func() {
		if recovered := recover(); recovered != nil {
			if large, ok := recovered.(tooLarge); ok {
				value, err = nil, large
			} else {
				value, err = nil, callError{"panic: " + cut(fmt.Sprint(recovered), 280)}
			}
		}
	}()
	if test.Ops != nil {
		return runOps(functions, test.Ops)
	}
	fn, ok := functions[test.Function]
	if !ok || fn == nil {
		return nil, callError{test.Function + " is not defined as a function"}
	}
	results, err := invoke(reflect.ValueOf(fn), test.Function, test.Args)
	if err != nil {
		return nil, err
	}
	return encodeResults(results)
}

// runOps constructs an object with the function new<Class> and calls methods on it (exported, so
// `is_empty` is IsEmpty); the op __iter__ iterates it (Iter(), see values.go). Its result is the list of
// what each op returned, the construction's being null.
func runOps(functions map[string]any, ops []json.RawMessage) (any, error) {
	var first []json.RawMessage
	if len(ops) == 0 || json.Unmarshal(ops[0], &first) != nil || len(first) != 2 {
		return nil, callError{"invalid operations"}
	}
	var class string
	var args []json.RawMessage
	json.Unmarshal(first[0], &class)
	json.Unmarshal(first[1], &args)
	constructor := "new" + class
	fn, ok := functions[constructor]
	if !ok || fn == nil {
		return nil, callError{constructor + " is not defined as a function"}
	}
	made, err := invoke(reflect.ValueOf(fn), constructor, args)
	if err != nil {
		return nil, err
	}
	if n := len(made); n > 1 && made[n-1].Type() == errorType && !made[n-1].IsNil() {
		return nil, callError{cut(made[n-1].Interface().(error).Error(), 300)}
	}
	if len(made) == 0 {
		return nil, callError{constructor + " returns nothing"}
	}
	object := made[0]
	out := []any{[]any{"none"}}
	budget := maxItems
	for _, raw := range ops[1:] {
		var op []json.RawMessage
		var name string
		if json.Unmarshal(raw, &op) != nil || len(op) != 2 || json.Unmarshal(op[0], &name) != nil {
			return nil, callError{"invalid operations"}
		}
		json.Unmarshal(op[1], &args)
		var results []reflect.Value
		if name == "__iter__" {
			method := object.MethodByName("Iter")
			if !method.IsValid() {
				return nil, callError{"Iter is not a method of " + class}
			}
			if results, err = invoke(method, "Iter", nil); err != nil {
				return nil, err
			}
			if len(results) > 0 {
				results = []reflect.Value{drainIterator(results[0])}
			}
		} else {
			method := object.MethodByName(name)
			if !method.IsValid() {
				return nil, callError{name + " is not a method of " + class}
			}
			if results, err = invoke(method, name, args); err != nil {
				return nil, err
			}
		}
		encoded, err := encodeResultsWith(results, &budget)
		if err != nil {
			return nil, err
		}
		out = append(out, encoded)
	}
	return []any{"list", out}, nil
}

// invoke calls fn with JSON arguments converted to its parameter types (encoding/json's rules).
func invoke(fn reflect.Value, name string, args []json.RawMessage) ([]reflect.Value, error) {
	if fn.Kind() != reflect.Func {
		return nil, callError{name + " is not a function"}
	}
	kind := fn.Type()
	fixed := kind.NumIn()
	if kind.IsVariadic() {
		fixed--
		if len(args) < fixed {
			return nil, callError{fmt.Sprintf("%s takes at least %d arguments, got %d", name, fixed, len(args))}
		}
	} else if len(args) != fixed {
		return nil, callError{fmt.Sprintf("%s takes %d arguments, got %d", name, fixed, len(args))}
	}
	values := make([]reflect.Value, len(args))
	for i, raw := range args {
		var target reflect.Type
		if i < fixed {
			target = kind.In(i)
		} else {
			target = kind.In(fixed).Elem()
		}
		value, err := decode(raw, target)
		if err != nil {
			return nil, callError{fmt.Sprintf("argument %d of %s: %s", i+1, name, strings.TrimPrefix(err.Error(), "json: "))}
		}
		values[i] = value
	}
	return fn.Call(values), nil
}

// encodeResults: no result is null, one is itself, several are a list. A last result of type error that
// is not nil is the call's error; a last result of type bool after others is "ok" (Go's comma-ok): false
// is null, true is the other results.
func encodeResults(results []reflect.Value) (any, error) {
	budget := maxItems
	return encodeResultsWith(results, &budget)
}

func encodeResultsWith(results []reflect.Value, budget *int) (any, error) {
	if n := len(results); n > 0 && results[n-1].Type() == errorType {
		if !results[n-1].IsNil() {
			return nil, callError{cut(results[n-1].Interface().(error).Error(), 300)}
		}
		results = results[:n-1]
	}
	if n := len(results); n > 1 && results[n-1].Kind() == reflect.Bool {
		if !results[n-1].Bool() {
			return []any{"none"}, nil
		}
		results = results[:n-1]
	}
	switch len(results) {
	case 0:
		return []any{"none"}, nil
	case 1:
		return encode(results[0], 0, budget)
	}
	items := make([]any, len(results))
	for i, result := range results {
		item, err := encode(result, 1, budget)
		if err != nil {
			return nil, err
		}
		items[i] = item
	}
	return []any{"list", items}, nil
}
