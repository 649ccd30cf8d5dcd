// The Java call child: runs the submission for the Python harness (harness/main.py with `--java`), which is
// the trusted supervisor: it holds the job, is non-dumpable, and attributes what this process prints to the
// test it handed over. This process holds descriptors 0-4 only and never the result channel:
//   java --add-opens java.base/java.io=ALL-UNNAMED ... -cp <harness>:<submission> codementor.Main call
// Commands on fd 3, each a 4-byte big-endian length and JSON: first {"test_timeout_ms", "package"?}, then one
// [index, {"function", "args"} | {"ops"}, with "package"?] at a time, the next only after this one answered;
// EOF = no more.
// Answers on fd 4, one JSON object per line, in harness.js's shapes:
//   {"event": "imported"} | {"event": "import_error", "message"}
//   {"event": "call", "index", "value": <tagged tree> | null, "error": str | null, "exception": str | null, "ms"}
// What the submission prints goes to fds 1 and 2 (flushed before each answer). Program tests never come
// here: the supervisor runs `java Solution` for each. Compile errors never either: the runner compiled
// Solution.java before (build.sh). `package` names the submission's package when the artifact holds several
// (the catalog checks), for the whole job or for one test.
//
// What a submission looks like (docs/LANGUAGES.md, "Java"):
// - a call runs a method of class `Solution` named as the case says (camelCase): static, or an instance
//   method of a `new Solution()`; overloads are told apart by arity and by which one the JSON arguments
//   convert to (int/long/double/boolean/char/String, boxed types, BigInteger/BigDecimal, arrays, List,
//   Set, Deque, Iterable, Iterator, Map, Optional, enums and records, nested; `null` for references);
// - a sequence of ops constructs the class the first op names (a top-level class of Solution.java, or a
//   class nested in Solution) and calls its methods; `__iter__` iterates the instance.
// Results go back as values: numbers, booleans, strings and chars, null, arrays, collections (a Set as a
// set), maps, iterators and streams (their items), Optional (its value or null), records and Map.Entry
// (as lists of their components).
//
// Each call runs on a thread of its own, in a thread group of its own, with a time limit: a call over it is
// stopped and answered "timed out" (then this child exits: the rest would most likely loop too, and the run
// is a timeout). Whatever a call left running (its threads, the processes it started) is ended after it, so
// the next call has the threads and memory it needs. None of this is a security boundary: the sandbox
// around this process is, and this process holds only the tests already handed to it.
package codementor;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.LinkedList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.BaseStream;

@SuppressWarnings("serial")
public final class Main {
    static final int COMMANDS_FD = 3;
    static final int ANSWERS_FD = 4;
    static final int MAX_ANSWER_BYTES = 256 * 1024; // one answer line the supervisor accepts (child.py)
    static final int MAX_DEPTH = 64;
    static final int MAX_ITEMS = 32768;
    static final int MAX_ITERATED = 100000;
    static final long STACK_BYTES = 16L * 1024 * 1024; // each call's thread: recursion 10 000+ deep works
    static final String SOLUTION = "Solution";
    static final String VALUE_TOO_LARGE = "the returned value is too large to compare";

    static InputStream commands;
    static OutputStream answers;
    static String prefix = ""; // the package of the submission under test, when the job (or the test) names one
    static long timeoutMs = 5000;

    private Main() {}

    public static void main(String[] argv) throws Exception {
        commands = new FileInputStream(inherited(COMMANDS_FD));
        answers = new FileOutputStream(inherited(ANSWERS_FD));
        System.setOut(new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(new FileOutputStream(FileDescriptor.err), false, StandardCharsets.UTF_8));
        if (receive() instanceof Map<?, ?> setup) {
            if (setup.get("test_timeout_ms") instanceof Long limit) timeoutMs = limit;
            if (setup.get("package") instanceof String name && !name.isEmpty()) prefix = name + ".";
        }
        ClassLoader loader = Main.class.getClassLoader();
        // The "import": initialising Solution runs its static initialisers (a class exercise's classes are
        // initialised when their first op uses them).
        Outcome loaded = timed(() -> {
            Class<?> solution = findClass(SOLUTION, loader, false);
            if (solution != null) Class.forName(solution.getName(), true, loader);
            return null;
        });
        if (loaded.error != null) {
            answer(object("event", "import_error", "message", loaded.timedOut ? "timed out" : loaded.error));
            Runtime.getRuntime().halt(0);
        }
        answer(object("event", "imported"));
        String jobPrefix = prefix;
        Map<Class<?>, Object> instances = new HashMap<>(); // a Solution instance for instance methods, made at first use
        for (Object command = receive(); command instanceof List<?> pair; command = receive()) {
            Object index = pair.get(0);
            Map<?, ?> test = (Map<?, ?>) pair.get(1);
            prefix = test.get("package") instanceof String name && !name.isEmpty() ? name + "." : jobPrefix;
            long started = System.nanoTime();
            Outcome outcome = timed(() -> test.containsKey("ops")
                    ? encode(runOps((List<?>) test.get("ops"), loader))
                    : encode(callFunction((String) test.get("function"), (List<?>) test.get("args"), loader, instances)));
            double ms = (System.nanoTime() - started) / 1e6;
            String error = outcome.timedOut ? "timed out" : outcome.error;
            String line = object("event", "call", "index", index, "value", error == null ? new Raw((String) outcome.value) : null,
                    "error", error, "exception", outcome.timedOut ? null : outcome.exception, "ms", ms);
            if (line.length() > MAX_ANSWER_BYTES / 4 && line.getBytes(StandardCharsets.UTF_8).length >= MAX_ANSWER_BYTES) {
                line = object("event", "call", "index", index, "value", null, "error", VALUE_TOO_LARGE, "exception", null, "ms", ms);
            }
            answer(line);
            if (outcome.timedOut) break; // the rest would most likely loop too: the run is a timeout
        }
        Runtime.getRuntime().halt(0); // threads the submission left behind do not keep this child alive
    }

    /** The inherited descriptor number `fd`: the JDK has no public way to name one (this needs
     * `--add-opens java.base/java.io=ALL-UNNAMED`). */
    static FileDescriptor inherited(int fd) throws ReflectiveOperationException {
        FileDescriptor descriptor = new FileDescriptor();
        Field number = FileDescriptor.class.getDeclaredField("fd");
        number.setAccessible(true);
        number.setInt(descriptor, fd);
        return descriptor;
    }

    // --- calls ------------------------------------------------------------------------------------------

    static Object callFunction(String name, List<?> args, ClassLoader loader, Map<Class<?>, Object> instances)
            throws Throwable {
        Class<?> solution = findClass(SOLUTION, loader, true);
        Invocation call = resolve(solution, name, args, false);
        Object target = null;
        if (!Modifier.isStatic(call.executable.getModifiers())) {
            target = instances.get(solution);
            if (target == null) instances.put(solution, target = construct(solution, List.of()));
        }
        return invoke(call, target);
    }

    static List<Object> runOps(List<?> ops, ClassLoader loader) throws Throwable {
        List<?> first = (List<?>) ops.get(0);
        Class<?> type = findClass((String) first.get(0), loader, true);
        Object object = construct(type, (List<?>) first.get(1));
        List<Object> out = new ArrayList<>();
        out.add(null);
        for (Object op : ops.subList(1, ops.size())) {
            String name = (String) ((List<?>) op).get(0);
            List<?> args = (List<?>) ((List<?>) op).get(1);
            if (name.equals("__iter__")) {
                out.add(items(object, "an instance of " + type.getSimpleName()));
                continue;
            }
            out.add(invoke(resolve(object.getClass(), name, args, true), object));
        }
        return out;
    }

    static Object construct(Class<?> type, List<?> args) throws Throwable {
        if (type.isInterface() || Modifier.isAbstract(type.getModifiers())) {
            throw new InstantiationException(type.getSimpleName() + " is abstract: it cannot be constructed");
        }
        if (type.isMemberClass() && !Modifier.isStatic(type.getModifiers())) {
            throw new InstantiationException(type.getSimpleName() + " is an inner class: declare it static");
        }
        return invoke(resolve(type, "<init>", args, false), null);
    }

    record Invocation(Executable executable, Object[] arguments) {}

    /** The method (or constructor) `name` that accepts these JSON arguments, with them converted. */
    static Invocation resolve(Class<?> type, String name, List<?> args, boolean instanceOnly) throws Exception {
        List<Executable> candidates = new ArrayList<>();
        if (name.equals("<init>")) {
            candidates.addAll(Arrays.asList(type.getDeclaredConstructors()));
        } else {
            Set<String> seen = new LinkedHashSet<>();
            for (Class<?> c = type; c != null && c != Object.class; c = c.getSuperclass()) {
                for (Method m : c.getDeclaredMethods()) {
                    if (m.getName().equals(name) && !m.isSynthetic() && !m.isBridge() && seen.add(signature(m))) candidates.add(m);
                }
            }
            for (Method m : type.getMethods()) {
                if (m.getName().equals(name) && !m.isBridge() && seen.add(signature(m))) candidates.add(m);
            }
        }
        // Deterministic order: exact arity before varargs, then by signature.
        candidates.sort(Comparator.comparing((Executable e) -> e.isVarArgs()).thenComparing(Main::signature));
        boolean any = false;
        for (Executable candidate : candidates) {
            if (instanceOnly && Modifier.isStatic(candidate.getModifiers())) continue;
            any = true;
            Object[] converted = convertArguments(candidate, args);
            if (converted != null) {
                candidate.setAccessible(true);
                return new Invocation(candidate, converted);
            }
        }
        String what = name.equals("<init>") ? "constructor" : "method " + name;
        if (!any) throw new NoSuchMethodException(type.getSimpleName() + " has no " + what);
        throw new IllegalArgumentException("no " + what + " of " + type.getSimpleName() + " accepts "
                + args.size() + " argument" + (args.size() == 1 ? "" : "s") + " of types (" + kinds(args) + ")");
    }

    static String signature(Executable e) {
        return e.getName() + Arrays.toString(e.getParameterTypes());
    }

    static String kinds(List<?> args) {
        List<String> kinds = new ArrayList<>();
        for (Object arg : args) kinds.add(Convert.kind(arg));
        return String.join(", ", kinds);
    }

    static Object[] convertArguments(Executable e, List<?> args) {
        Type[] types = e.getGenericParameterTypes();
        Class<?>[] raw = e.getParameterTypes();
        int n = types.length;
        if (types.length != raw.length) return null; // an inner class's hidden outer parameter
        try {
            if (!e.isVarArgs() || (args.size() == n && Convert.fits(args.get(n - 1), types[n - 1]))) {
                if (args.size() != n) return null;
                Object[] out = new Object[n];
                for (int i = 0; i < n; i++) out[i] = Convert.to(args.get(i), types[i]);
                return out;
            }
            if (args.size() < n - 1) return null;
            Object[] out = new Object[n];
            for (int i = 0; i < n - 1; i++) out[i] = Convert.to(args.get(i), types[i]);
            Type component = types[n - 1] instanceof GenericArrayType g ? g.getGenericComponentType() : raw[n - 1].getComponentType();
            Object rest = Array.newInstance(raw[n - 1].getComponentType(), args.size() - n + 1);
            for (int i = n - 1; i < args.size(); i++) Array.set(rest, i - n + 1, Convert.to(args.get(i), component));
            out[n - 1] = rest;
            return out;
        } catch (Convert.Mismatch | IllegalArgumentException mismatch) {
            return null;
        }
    }

    static Object invoke(Invocation call, Object target) throws Throwable {
        try {
            if (call.executable instanceof Constructor<?> c) return c.newInstance(call.arguments);
            return ((Method) call.executable).invoke(target, call.arguments);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /** The class `name` of the submission: top-level in Solution.java, or nested in Solution. */
    static Class<?> findClass(String name, ClassLoader loader, boolean required) throws ClassNotFoundException {
        for (String candidate : List.of(prefix + name, prefix + SOLUTION + "$" + name)) {
            try {
                return Class.forName(candidate, false, loader);
            } catch (ClassNotFoundException | LinkageError e) {
                // try the next
            }
        }
        if (!required) return null;
        throw new ClassNotFoundException("no class " + name + " in Solution.java (declare it without a package)");
    }

    // --- running a call on a thread of its own ---------------------------------------------------------

    interface Body {
        Object run() throws Throwable;
    }

    static final class Outcome {
        Object value;
        String error;
        String exception;
        boolean timedOut;
    }

    @SuppressWarnings({"deprecation", "removal"})
    static Outcome timed(Body body) {
        Outcome outcome = new Outcome();
        ThreadGroup group = new ThreadGroup("call");
        Thread thread = new Thread(group, () -> {
            try {
                outcome.value = body.run();
            } catch (TooLarge tooLarge) {
                outcome.error = VALUE_TOO_LARGE;
            } catch (Throwable error) {
                outcome.error = describe(error);
                outcome.exception = builtinName(error);
            }
        }, "main", STACK_BYTES);
        thread.setDaemon(true);
        try {
            thread.start();
            thread.join(timeoutMs);
            outcome.timedOut = thread.isAlive();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Throwable cannotStart) { // e.g. no thread left: what a previous call started took them all
            outcome.error = describe(cannotStart);
            outcome.exception = builtinName(cannotStart);
        }
        // A call's threads and processes end with it, or they would hold the threads, processes and memory
        // the next calls need. Every process under this one is the submission's: this child starts none.
        try {
            group.stop();
        } catch (UnsupportedOperationException unsupported) {
            // a JDK without Thread.stop: whatever it left runs on (the supervisor ends it with this child)
        }
        try {
            ProcessHandle.current().descendants().forEach(ProcessHandle::destroyForcibly);
        } catch (RuntimeException cannotList) {
            // no /proc: the supervisor ends them with this child
        }
        long deadline = System.nanoTime() + 200_000_000L;
        while ((group.activeCount() > 0 || ProcessHandle.current().children().findAny().isPresent())
                && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        return outcome;
    }

    static Throwable unwrap(Throwable error) {
        return error instanceof ExceptionInInitializerError init && init.getCause() != null ? init.getCause() : error;
    }

    static String describe(Throwable thrown) {
        Throwable error = unwrap(thrown);
        String message = error.getMessage();
        String text = error.getClass().getSimpleName() + (message == null || message.isEmpty() ? "" : ": " + message);
        return text.length() > 300 ? text.substring(0, 300) : text;
    }

    /** Only the JDK's own exception names: a class of the submission's could carry a hidden test's arguments. */
    static String builtinName(Throwable error) {
        Class<?> type = unwrap(error).getClass();
        boolean jdk = type.getClassLoader() == null && type.getPackageName().startsWith("java.");
        return jdk ? type.getSimpleName() : null;
    }

    static final class TooLarge extends RuntimeException {
        TooLarge() {
            super(VALUE_TOO_LARGE, null, false, false);
        }
    }

    static String encode(Object value) {
        StringBuilder out = new StringBuilder();
        new Encoder(out).write(value, 0);
        return out.toString();
    }

    static final class Encoder {
        private final StringBuilder out;
        private int left = MAX_ITEMS;

        Encoder(StringBuilder out) {
            this.out = out;
        }

        void write(Object value, int depth) {
            if (--left < 0) throw new TooLarge();
            if (depth > MAX_DEPTH) {
                tag("other").append(", ");
                Json.quote(out, "too deeply nested").append(']');
                return;
            }
            if (value == null) {
                out.append("[\"none\"]");
            } else if (value instanceof Boolean b) {
                tag("bool").append(", ").append(b).append(']');
            } else if (value instanceof Integer || value instanceof Long || value instanceof Short || value instanceof Byte
                    || value instanceof BigInteger || value instanceof AtomicInteger || value instanceof AtomicLong) {
                tag("int").append(", \"").append(value).append("\"]");
            } else if (value instanceof Double || value instanceof Float || value instanceof BigDecimal) {
                double d = ((Number) value).doubleValue();
                String text = Double.isNaN(d) ? "nan" : Double.isInfinite(d) ? (d > 0 ? "inf" : "-inf") : value.toString();
                tag("float").append(", \"").append(text).append("\"]");
            } else if (value instanceof CharSequence || value instanceof Character) {
                tag("str").append(", ");
                Json.quote(out, value.toString()).append(']');
            } else if (value instanceof Enum<?> e) {
                tag("str").append(", ");
                Json.quote(out, e.name()).append(']');
            } else if (value instanceof Optional<?> o) {
                write(o.orElse(null), depth);
            } else if (value instanceof OptionalInt o) {
                write(o.isPresent() ? (Object) o.getAsInt() : null, depth);
            } else if (value instanceof OptionalLong o) {
                write(o.isPresent() ? (Object) o.getAsLong() : null, depth);
            } else if (value instanceof OptionalDouble o) {
                write(o.isPresent() ? (Object) o.getAsDouble() : null, depth);
            } else if (value instanceof Map<?, ?> map) {
                tag("dict").append(", [");
                boolean first = true;
                for (Map.Entry<?, ?> entry : map.entrySet()) {
                    if (!first) out.append(", ");
                    first = false;
                    out.append('[');
                    write(entry.getKey(), depth + 1);
                    out.append(", ");
                    write(entry.getValue(), depth + 1);
                    out.append(']');
                }
                out.append("]]");
            } else if (value instanceof Set<?> set) {
                sequence("set", set.iterator(), depth);
            } else if (value instanceof Map.Entry<?, ?> entry) {
                sequence("list", Arrays.asList(entry.getKey(), entry.getValue()).iterator(), depth);
            } else if (value.getClass().isArray()) {
                int length = Array.getLength(value);
                if (length > MAX_ITEMS) throw new TooLarge();
                List<Object> items = new ArrayList<>(length);
                for (int i = 0; i < length; i++) items.add(Array.get(value, i));
                sequence("list", items.iterator(), depth);
            } else if (value instanceof Iterable<?> iterable) {
                sequence("list", iterable.iterator(), depth);
            } else if (value instanceof Iterator<?> iterator) {
                sequence("list", iterator, depth);
            } else if (value instanceof BaseStream<?, ?> stream) {
                sequence("list", stream.iterator(), depth);
            } else if (value.getClass().isRecord()) {
                List<Object> parts = new ArrayList<>();
                for (RecordComponent component : value.getClass().getRecordComponents()) {
                    try {
                        Method accessor = component.getAccessor();
                        accessor.setAccessible(true);
                        parts.add(accessor.invoke(value));
                    } catch (ReflectiveOperationException e) {
                        parts.add(null);
                    }
                }
                sequence("list", parts.iterator(), depth);
            } else {
                String text;
                try {
                    text = String.valueOf(value);
                } catch (RuntimeException e) {
                    text = "an object";
                }
                tag("other").append(", ");
                Json.quote(out, text.length() > 200 ? text.substring(0, 200) : text).append(']');
            }
        }

        private void sequence(String kind, Iterator<?> items, int depth) {
            tag(kind).append(", [");
            int count = 0;
            while (items.hasNext()) {
                if (++count > MAX_ITERATED) throw new TooLarge();
                if (count > 1) out.append(", ");
                write(items.next(), depth + 1);
            }
            out.append("]]");
        }

        private StringBuilder tag(String name) {
            return out.append("[\"").append(name).append('"');
        }
    }

    /** The items of an instance iterated (`__iter__`): an Iterable, an Iterator or a stream. */
    static List<Object> items(Object object, String what) {
        Iterator<?> iterator;
        if (object instanceof Iterable<?> iterable) iterator = iterable.iterator();
        else if (object instanceof Iterator<?> it) iterator = it;
        else if (object instanceof BaseStream<?, ?> stream) iterator = stream.iterator();
        else throw new UnsupportedOperationException(what + " is not Iterable");
        List<Object> out = new ArrayList<>();
        while (iterator.hasNext()) {
            if (out.size() >= MAX_ITERATED) throw new TooLarge();
            out.add(iterator.next());
        }
        return out;
    }

    // --- answers -----------------------------------------------------------------------------------------

    /** A value already in JSON (an encoded tree). */
    record Raw(String json) {}

    static String object(Object... pairs) {
        StringBuilder out = new StringBuilder("{");
        for (int i = 0; i < pairs.length; i += 2) {
            if (i > 0) out.append(", ");
            Json.quote(out, (String) pairs[i]).append(": ");
            Object value = pairs[i + 1];
            if (value == null) out.append("null");
            else if (value instanceof Raw raw) out.append(raw.json);
            else if (value instanceof String text) Json.quote(out, text);
            else out.append(value); // numbers and booleans
        }
        return out.append('}').toString();
    }

    /** One answer on fd 4, after whatever the submission printed (so the supervisor attributes it right). */
    static void answer(String line) {
        System.out.flush();
        System.err.flush();
        try {
            answers.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            answers.flush();
        } catch (IOException e) {
            Runtime.getRuntime().halt(3); // the supervisor is gone
        }
    }

    /** The next command: a 4-byte big-endian length and JSON; null at EOF (no more tests). */
    static Object receive() throws IOException {
        byte[] header = readExactly(4);
        if (header == null) return null;
        int length = ((header[0] & 0xff) << 24) | ((header[1] & 0xff) << 16) | ((header[2] & 0xff) << 8) | (header[3] & 0xff);
        byte[] body = readExactly(length);
        return body == null ? null : new Json(new String(body, StandardCharsets.UTF_8)).parse();
    }

    /** `size` bytes of the command pipe, or null at its end (FileInputStream.readNBytes seeks: not on a pipe). */
    static byte[] readExactly(int size) throws IOException {
        byte[] data = new byte[size];
        for (int got = 0; got < size; ) {
            int read = commands.read(data, got, size - got);
            if (read < 0) return null;
            got += read;
        }
        return data;
    }

    // --- arguments in: JSON to Java values --------------------------------------------------------------

    static final class Convert {
        private Convert() {}

        static final class Mismatch extends Exception {
            Mismatch() {
                super(null, null, false, false);
            }
        }

        static String kind(Object json) {
            if (json == null) return "null";
            if (json instanceof Boolean) return "boolean";
            if (json instanceof Long || json instanceof BigInteger) return "integer";
            if (json instanceof Double) return "number";
            if (json instanceof String) return "string";
            if (json instanceof List) return "array";
            return "object";
        }

        static boolean fits(Object json, Type type) {
            try {
                to(json, type);
                return true;
            } catch (Mismatch e) {
                return false;
            }
        }

        /** The natural Java value of a JSON value, for Object (and type variables): Integer when it fits. */
        static Object natural(Object json) {
            if (json instanceof Long l) return l == l.intValue() ? (Object) l.intValue() : l;
            if (json instanceof List<?> list) {
                List<Object> out = new ArrayList<>(list.size());
                for (Object item : list) out.add(natural(item));
                return out;
            }
            if (json instanceof Map<?, ?> map) {
                Map<String, Object> out = new LinkedHashMap<>();
                for (Map.Entry<?, ?> entry : map.entrySet()) out.put((String) entry.getKey(), natural(entry.getValue()));
                return out;
            }
            return json; // null, Boolean, BigInteger, Double, String
        }

        static Object to(Object json, Type type) throws Mismatch {
            if (type instanceof Class<?> c) return toClass(json, c, null);
            if (type instanceof ParameterizedType p) return toClass(json, (Class<?>) p.getRawType(), p.getActualTypeArguments());
            if (type instanceof GenericArrayType g) {
                if (!(json instanceof List<?> list)) throw new Mismatch();
                Class<?> component = erase(g.getGenericComponentType());
                Object out = Array.newInstance(component, list.size());
                for (int i = 0; i < list.size(); i++) Array.set(out, i, to(list.get(i), g.getGenericComponentType()));
                return out;
            }
            if (type instanceof TypeVariable<?> v) return to(json, v.getBounds()[0]);
            if (type instanceof WildcardType w) return to(json, w.getUpperBounds()[0]);
            throw new Mismatch();
        }

        static Class<?> erase(Type type) {
            if (type instanceof Class<?> c) return c;
            if (type instanceof ParameterizedType p) return (Class<?>) p.getRawType();
            if (type instanceof GenericArrayType g) return Array.newInstance(erase(g.getGenericComponentType()), 0).getClass();
            if (type instanceof TypeVariable<?> v) return erase(v.getBounds()[0]);
            if (type instanceof WildcardType w) return erase(w.getUpperBounds()[0]);
            return Object.class;
        }

        static Type argument(Type[] arguments, int index) {
            return arguments == null || arguments.length <= index ? Object.class : arguments[index];
        }

        static Object toClass(Object json, Class<?> c, Type[] arguments) throws Mismatch {
            if (c.isPrimitive()) {
                if (json == null) throw new Mismatch();
                return primitive(json, c);
            }
            if (json == null) {
                if (c == Optional.class) return Optional.empty();
                return null;
            }
            if (c == Object.class || c == Comparable.class || c == java.io.Serializable.class) {
                Object value = natural(json);
                if (c == Comparable.class && !(value instanceof Comparable)) throw new Mismatch();
                return value;
            }
            if (c == Integer.class || c == Long.class || c == Short.class || c == Byte.class || c == Double.class
                    || c == Float.class || c == Boolean.class || c == Character.class) {
                return primitive(json, c);
            }
            if (c == Number.class) {
                if (!(json instanceof Number)) throw new Mismatch();
                return natural(json);
            }
            if (c == String.class || c == CharSequence.class) {
                if (!(json instanceof String)) throw new Mismatch();
                return json;
            }
            if (c == BigInteger.class) {
                if (json instanceof Long l) return BigInteger.valueOf(l);
                if (json instanceof BigInteger) return json;
                throw new Mismatch();
            }
            if (c == BigDecimal.class) {
                if (json instanceof Long l) return BigDecimal.valueOf(l);
                if (json instanceof BigInteger b) return new BigDecimal(b);
                if (json instanceof Double d) return BigDecimal.valueOf(d);
                throw new Mismatch();
            }
            if (c == Optional.class) return Optional.ofNullable(to(json, argument(arguments, 0)));
            if (c.isEnum()) {
                if (!(json instanceof String s)) throw new Mismatch();
                for (Object constant : c.getEnumConstants()) {
                    if (((Enum<?>) constant).name().equals(s)) return constant;
                }
                throw new Mismatch();
            }
            if (c.isArray()) {
                if (!(json instanceof List<?> list)) throw new Mismatch();
                Object out = Array.newInstance(c.getComponentType(), list.size());
                for (int i = 0; i < list.size(); i++) Array.set(out, i, to(list.get(i), c.getComponentType()));
                return out;
            }
            if (c.isRecord()) return record(json, c);
            if (json instanceof List<?> list) {
                Collection<Object> out = collection(c);
                if (out == null) {
                    if (c == Iterator.class || c == java.util.ListIterator.class) {
                        List<Object> items = new ArrayList<>();
                        for (Object item : list) items.add(to(item, argument(arguments, 0)));
                        return c == Iterator.class ? items.iterator() : items.listIterator();
                    }
                    throw new Mismatch();
                }
                for (Object item : list) out.add(to(item, argument(arguments, 0)));
                return out;
            }
            if (json instanceof Map<?, ?> map) {
                Map<Object, Object> out;
                if (c.isAssignableFrom(LinkedHashMap.class)) out = new LinkedHashMap<>();
                else if (c.isAssignableFrom(TreeMap.class)) out = new TreeMap<>();
                else throw new Mismatch();
                for (Map.Entry<?, ?> entry : map.entrySet()) {
                    out.put(key((String) entry.getKey(), argument(arguments, 0)), to(entry.getValue(), argument(arguments, 1)));
                }
                return out;
            }
            throw new Mismatch();
        }

        /** A collection of the wanted kind, or null when `c` is none. */
        static Collection<Object> collection(Class<?> c) {
            if (c.isAssignableFrom(ArrayList.class)) return new ArrayList<>();
            if (c.isAssignableFrom(LinkedHashSet.class)) return new LinkedHashSet<>();
            if (c.isAssignableFrom(ArrayDeque.class)) return new ArrayDeque<>();
            if (c.isAssignableFrom(LinkedList.class)) return new LinkedList<>();
            if (c.isAssignableFrom(TreeSet.class) || c == SortedSet.class) return new TreeSet<>();
            return null;
        }

        /** A JSON object's key as the map's key type: a string, or a number or character written as one. */
        static Object key(String key, Type type) throws Mismatch {
            Class<?> c = erase(type);
            if (c == String.class || c == Object.class || c == CharSequence.class || c == Comparable.class) return key;
            try {
                if (c == Integer.class) return Integer.valueOf(key);
                if (c == Long.class) return Long.valueOf(key);
                if (c == BigInteger.class) return new BigInteger(key);
                if (c == Double.class) return Double.valueOf(key);
            } catch (NumberFormatException e) {
                throw new Mismatch();
            }
            if (c == Character.class && key.length() == 1) return key.charAt(0);
            if (c.isEnum()) return to(key, c);
            throw new Mismatch();
        }

        static Object record(Object json, Class<?> c) throws Mismatch {
            RecordComponent[] components = c.getRecordComponents();
            Object[] values = new Object[components.length];
            Class<?>[] types = new Class<?>[components.length];
            for (int i = 0; i < components.length; i++) {
                types[i] = components[i].getType();
                Object part;
                if (json instanceof List<?> list && list.size() == components.length) part = list.get(i);
                else if (json instanceof Map<?, ?> map && map.size() == components.length && map.containsKey(components[i].getName())) {
                    part = map.get(components[i].getName());
                } else {
                    throw new Mismatch();
                }
                values[i] = to(part, components[i].getGenericType());
            }
            try {
                Constructor<?> constructor = c.getDeclaredConstructor(types);
                constructor.setAccessible(true);
                return constructor.newInstance(values);
            } catch (ReflectiveOperationException e) {
                throw new Mismatch(); // its compact constructor refused the values: no such record
            }
        }

        static Object primitive(Object json, Class<?> c) throws Mismatch {
            if (c == boolean.class || c == Boolean.class) {
                if (json instanceof Boolean) return json;
                throw new Mismatch();
            }
            if (c == char.class || c == Character.class) {
                if (json instanceof String s && s.length() == 1) return s.charAt(0);
                throw new Mismatch();
            }
            if (c == double.class || c == Double.class || c == float.class || c == Float.class) {
                if (!(json instanceof Number n)) throw new Mismatch();
                return c == double.class || c == Double.class ? (Object) n.doubleValue() : (Object) n.floatValue();
            }
            long value;
            if (json instanceof Long l) {
                value = l;
            } else if (json instanceof Double d && d == Math.rint(d) && Math.abs(d) < 0x1p62) {
                value = d.longValue();
            } else {
                throw new Mismatch(); // not an integer, or beyond long
            }
            if (c == long.class || c == Long.class) return value;
            if (c == int.class || c == Integer.class) {
                if (value != (int) value) throw new Mismatch();
                return (int) value;
            }
            if (c == short.class || c == Short.class) {
                if (value != (short) value) throw new Mismatch();
                return (short) value;
            }
            if (c == byte.class || c == Byte.class) {
                if (value != (byte) value) throw new Mismatch();
                return (byte) value;
            }
            throw new Mismatch();
        }
    }

    // --- a small JSON reader and string writer ----------------------------------------------------------

    static final class Json {
        private final String text;
        private int at;

        Json(String text) {
            this.text = text;
        }

        /** Integers as Long (BigInteger beyond), other numbers as Double, objects as LinkedHashMap. */
        Object parse() {
            Object value = value();
            space();
            if (at != text.length()) throw error();
            return value;
        }

        private Object value() {
            space();
            if (at >= text.length()) throw error();
            char c = text.charAt(at);
            switch (c) {
                case '{': {
                    at++;
                    Map<String, Object> out = new LinkedHashMap<>();
                    space();
                    if (peek('}')) return out;
                    do {
                        space();
                        String key = string();
                        space();
                        expect(':');
                        out.put(key, value());
                        space();
                    } while (next(','));
                    expect('}');
                    return out;
                }
                case '[': {
                    at++;
                    List<Object> out = new ArrayList<>();
                    space();
                    if (peek(']')) return out;
                    do {
                        out.add(value());
                        space();
                    } while (next(','));
                    expect(']');
                    return out;
                }
                case '"':
                    return string();
                case 't':
                    return word("true", Boolean.TRUE);
                case 'f':
                    return word("false", Boolean.FALSE);
                case 'n':
                    return word("null", null);
                default:
                    return number();
            }
        }

        private Object number() {
            int start = at;
            boolean integral = true;
            while (at < text.length() && "+-0123456789.eE".indexOf(text.charAt(at)) >= 0) {
                if (".eE".indexOf(text.charAt(at)) >= 0) integral = false;
                at++;
            }
            String digits = text.substring(start, at);
            try {
                if (!integral) return Double.valueOf(digits);
                BigInteger big = new BigInteger(digits);
                return big.bitLength() < 64 ? (Object) big.longValue() : big;
            } catch (NumberFormatException e) {
                throw error();
            }
        }

        private String string() {
            expect('"');
            StringBuilder out = new StringBuilder();
            while (true) {
                if (at >= text.length()) throw error();
                char c = text.charAt(at++);
                if (c == '"') return out.toString();
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                char e = text.charAt(at++);
                switch (e) {
                    case 'n' -> out.append('\n');
                    case 't' -> out.append('\t');
                    case 'r' -> out.append('\r');
                    case 'b' -> out.append('\b');
                    case 'f' -> out.append('\f');
                    case 'u' -> {
                        out.append((char) Integer.parseInt(text.substring(at, at + 4), 16));
                        at += 4;
                    }
                    default -> out.append(e); // \" \\ \/
                }
            }
        }

        private Object word(String word, Object value) {
            if (!text.startsWith(word, at)) throw error();
            at += word.length();
            return value;
        }

        private void space() {
            while (at < text.length() && Character.isWhitespace(text.charAt(at))) at++;
        }

        private boolean peek(char c) {
            if (at < text.length() && text.charAt(at) == c) {
                at++;
                return true;
            }
            return false;
        }

        private boolean next(char c) {
            return peek(c);
        }

        private void expect(char c) {
            if (!peek(c)) throw error();
        }

        private IllegalArgumentException error() {
            return new IllegalArgumentException("bad JSON at " + at);
        }

        /** `s` as a JSON string; a lone surrogate becomes U+FFFD (the report is UTF-8). */
        static StringBuilder quote(StringBuilder out, String s) {
            out.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    default -> {
                        if (c < 0x20 || c == 0x2028 || c == 0x2029) {
                            out.append(String.format("\\u%04x", (int) c));
                        } else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                            out.append(c).append(s.charAt(++i));
                        } else if (Character.isSurrogate(c)) {
                            out.append('\ufffd');
                        } else {
                            out.append(c);
                        }
                    }
                }
            }
            return out.append('"');
        }
    }
}
