package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
)

const (
	maxDepth    = 64
	maxItems    = 32768
	maxIterated = 100000
)

var jsonNumber = reflect.TypeOf(json.Number(""))

type tooLarge struct{}

func (tooLarge) Error() string { return "the returned value is too large to compare" }

// decode converts one JSON argument to `target`: encoding/json's rules, except that a number going into
// an interface (any) becomes an int when it is integral, else a float64.
func decode(raw json.RawMessage, target reflect.Type) (reflect.Value, error) {
	if target.Kind() == reflect.Slice && len(raw) > 0 && raw[0] == '"' {
		return characters(raw, target)
	}
	value := reflect.New(target)
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	if err := decoder.Decode(value.Interface()); err != nil {
		return reflect.Value{}, err
	}
	normalize(value.Elem(), 0)
	return value.Elem(), nil
}

// characters is a string passed where a slice is expected, as the sequence of its characters (a string is
// an iterable of characters in Python and JavaScript): one-character strings, runes or bytes.
func characters(raw json.RawMessage, target reflect.Type) (reflect.Value, error) {
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return reflect.Value{}, err
	}
	element := target.Elem()
	if element.Kind() == reflect.Uint8 {
		return reflect.ValueOf([]byte(text)).Convert(target), nil
	}
	out := reflect.MakeSlice(target, 0, len(text))
	for _, r := range text {
		var item reflect.Value
		switch {
		case element.Kind() == reflect.Int32:
			item = reflect.ValueOf(r).Convert(element)
		case element.Kind() == reflect.String || element.Kind() == reflect.Interface && element.NumMethod() == 0:
			item = reflect.ValueOf(string(r))
		default:
			return reflect.Value{}, fmt.Errorf("cannot use a string as %s", target)
		}
		out = reflect.Append(out, item.Convert(element))
	}
	return out, nil
}

func number(n json.Number) any {
	if i, err := strconv.ParseInt(string(n), 10, 0); err == nil {
		return int(i)
	}
	f, _ := strconv.ParseFloat(string(n), 64)
	return f
}

// normalize replaces json.Number values held in interfaces by ints or float64s.
func normalize(v reflect.Value, depth int) {
	if depth > maxDepth {
		return
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		inner := v.Elem()
		if inner.Type() == jsonNumber {
			v.Set(reflect.ValueOf(number(json.Number(inner.String()))))
			return
		}
		copied := reflect.New(inner.Type()).Elem()
		copied.Set(inner)
		normalize(copied, depth+1)
		v.Set(copied)
	case reflect.Pointer:
		if !v.IsNil() {
			normalize(v.Elem(), depth+1)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			normalize(v.Index(i), depth+1)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			copied := reflect.New(iter.Value().Type()).Elem()
			copied.Set(iter.Value())
			normalize(copied, depth+1)
			v.SetMapIndex(iter.Key(), copied)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).CanSet() {
				normalize(v.Field(i), depth+1)
			}
		}
	}
}

// encode is a value as the tagged tree of harness.js's encode (base.decode on the server): nil slices and
// maps are empty ones; pointers and interfaces stand for what they point to; a struct is a dict of its
// exported fields (named by their json tags when they have one); a channel stands for what it delivers
// until it is closed (a generator).
func encode(v reflect.Value, depth int, budget *int) (any, error) {
	*budget--
	if *budget < 0 {
		return nil, tooLarge{}
	}
	if depth > maxDepth {
		return []any{"other", "too deeply nested"}, nil
	}
	if !v.IsValid() {
		return []any{"none"}, nil
	}
	switch v.Kind() {
	case reflect.Bool:
		return []any{"bool", v.Bool()}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return []any{"int", strconv.FormatInt(v.Int(), 10)}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return []any{"int", strconv.FormatUint(v.Uint(), 10)}, nil
	case reflect.Float32, reflect.Float64:
		return []any{"float", formatFloat(v.Float(), v.Type().Bits())}, nil
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		return []any{"complex", formatFloat(real(c), 64), formatFloat(imag(c), 64)}, nil
	case reflect.String:
		return []any{"str", v.String()}, nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return []any{"none"}, nil
		}
		return encode(v.Elem(), depth+1, budget)
	case reflect.Slice, reflect.Array:
		items := make([]any, 0, v.Len())
		for i := 0; i < v.Len(); i++ {
			item, err := encode(v.Index(i), depth+1, budget)
			if err != nil {
				return nil, err
			}
			items = append(items, item)
		}
		return []any{"list", items}, nil
	case reflect.Map:
		pairs := make([]any, 0, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			key, err := encode(iter.Key(), depth+1, budget)
			if err != nil {
				return nil, err
			}
			value, err := encode(iter.Value(), depth+1, budget)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, []any{key, value})
		}
		return []any{"dict", pairs}, nil
	case reflect.Struct:
		pairs := []any{}
		for i := 0; i < v.NumField(); i++ {
			field := v.Type().Field(i)
			if !field.IsExported() {
				continue
			}
			name := field.Name
			if tag, ok := field.Tag.Lookup("json"); ok && tag != "" && tag != "-" {
				name = tag
				if comma := bytes.IndexByte([]byte(tag), ','); comma >= 0 {
					name = tag[:comma]
				}
			}
			value, err := encode(v.Field(i), depth+1, budget)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, []any{[]any{"str", name}, value})
		}
		return []any{"dict", pairs}, nil
	case reflect.Chan:
		if v.IsNil() {
			return []any{"none"}, nil
		}
		return encode(drainIterator(v), depth, budget)
	case reflect.Func:
		return []any{"other", "a function"}, nil
	}
	return []any{"other", v.Type().String()}, nil
}

func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// drainIterator is what an iterator stands for, as a slice: a channel's values until it is closed, the
// values of a func() (T, bool) or of an object's Next() (T, bool) until the bool is false. Anything else
// is itself.
func drainIterator(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	next := reflect.Value{}
	switch {
	case v.Kind() == reflect.Chan && !v.IsNil():
		items := []any{}
		for len(items) <= maxIterated {
			item, ok := v.Recv()
			if !ok {
				return reflect.ValueOf(items)
			}
			items = append(items, item.Interface())
		}
		panic(tooLarge{})
	case v.Kind() == reflect.Func && !v.IsNil():
		next = v
	case v.IsValid() && v.MethodByName("Next").IsValid():
		next = v.MethodByName("Next")
	default:
		return v
	}
	kind := next.Type()
	if kind.NumIn() != 0 || kind.NumOut() != 2 || kind.Out(1).Kind() != reflect.Bool {
		return v
	}
	items := []any{}
	for len(items) <= maxIterated {
		out := next.Call(nil)
		if !out[1].Bool() {
			return reflect.ValueOf(items)
		}
		items = append(items, out[0].Interface())
	}
	panic(tooLarge{})
}
