package io.streamtime.bench;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The Kafka Streams contender of streamtime-bench: the same topologies as streamtime-bench-app,
 * written with Kafka Streams' public API, run with one stream thread.
 *
 * <p>It talks to the runner through stdout: {@code bench-app: ready} when the instance runs,
 * {@code bench-app: begin} when the measured phase
 * starts (first input record, or just before start for a restore) and {@code bench-app: end}
 * when it is over (after the closing commit, or when every store is restored). The runner
 * samples the process's CPU time from the OS at both lines.
 */
public final class KStreamsBench {
    private KStreamsBench() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = parse(argv);
        String workload = args.get("workload");
        String input = args.get("input");
        String output = args.get("output");
        long records = Long.parseLong(args.getOrDefault("records", "0"));
        boolean eos = "exactly-once".equals(args.getOrDefault("guarantee", "at-least-once"));

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args.get("application-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("bootstrap-servers"));
        props.put(StreamsConfig.STATE_DIR_CONFIG, args.get("state-dir"));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG,
                Integer.parseInt(args.getOrDefault("threads", "1")));
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
                eos ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG,
                Long.parseLong(args.getOrDefault("commit-interval-ms", eos ? "100" : "30000")));
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG,
                Long.parseLong(args.getOrDefault("cache-bytes", "10485760")));
        props.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG),
                Integer.parseInt(args.getOrDefault("linger-ms", "5")));
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        AtomicLong started = new AtomicLong();
        AtomicLong seen = new AtomicLong();
        StreamsBuilder builder = new StreamsBuilder();
        // `begin` at the first record read from any input; `seen` counts the records that
        // reached the measured stage (behind a repartition topic too, both sides of a join).
        java.util.function.Function<String, KStream<String, byte[]>> source = topic -> builder
                .stream(topic, Consumed.with(Serdes.String(), Serdes.ByteArray()))
                .peek((k, v) -> {
                    if (started.incrementAndGet() == 1) {
                        announce("begin");
                    }
                });
        java.util.function.UnaryOperator<KStream<String, byte[]>> counted =
                stream -> stream.peek((k, v) -> seen.incrementAndGet());
        TimeWindows hopping = TimeWindows.ofSizeAndGrace(Duration.ofSeconds(60), Duration.ofSeconds(5))
                .advanceBy(Duration.ofSeconds(10));
        Produced<org.apache.kafka.streams.kstream.Windowed<String>, Long> windowedOutput = Produced.with(
                WindowedSerdes.timeWindowedSerdeFrom(String.class, 60_000L), Serdes.Long());
        String otherInput = args.get("other-input");
        switch (workload) {
            case "pass" -> counted.apply(source.apply(input))
                    .filter((k, v) -> v != null && v.length > 0 && v[0] != 'j')
                    .mapValues(KStreamsBench::upper)
                    .to(output, Produced.with(Serdes.String(), Serdes.ByteArray()));
            case "count", "restore" -> counted.apply(source.apply(input))
                    .groupByKey()
                    .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts"))
                    .toStream()
                    .to(output, Produced.with(Serdes.String(), Serdes.Long()));
            case "hopping", "hopping-final" -> counted.apply(source.apply(input))
                    .groupByKey()
                    .windowedBy(hopping)
                    .emitStrategy(workload.equals("hopping")
                            ? EmitStrategy.onWindowUpdate()
                            : EmitStrategy.onWindowClose())
                    .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("hop-counts"))
                    .toStream()
                    .to(output, windowedOutput);
            case "rekey-hopping" -> counted.apply(source.apply(input)
                            .selectKey((k, v) -> k)
                            .repartition(Repartitioned.<String, byte[]>as("rekeyed")
                                    .withKeySerde(Serdes.String())
                                    .withValueSerde(Serdes.ByteArray())))
                    .groupByKey()
                    .windowedBy(hopping)
                    .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("hop-counts"))
                    .toStream()
                    .to(output, windowedOutput);
            case "session", "session-final" -> counted.apply(source.apply(input))
                    .groupByKey()
                    .windowedBy(SessionWindows.ofInactivityGapAndGrace(
                            Duration.ofSeconds(60), Duration.ofSeconds(5)))
                    .emitStrategy(workload.equals("session")
                            ? EmitStrategy.onWindowUpdate()
                            : EmitStrategy.onWindowClose())
                    .count(Materialized.<String, Long, SessionStore<Bytes, byte[]>>as("session-counts"))
                    .toStream()
                    .to(output, Produced.with(
                            WindowedSerdes.sessionWindowedSerdeFrom(String.class), Serdes.Long()));
            case "stream-stream-join" -> {
                KStream<String, byte[]> left = counted.apply(source.apply(input));
                KStream<String, byte[]> right = counted.apply(source.apply(otherInput));
                left.join(right,
                                (l, r) -> (long) (l.length + r.length),
                                JoinWindows.ofTimeDifferenceAndGrace(
                                        Duration.ofSeconds(60), Duration.ofSeconds(5)),
                                StreamJoined.with(Serdes.String(), Serdes.ByteArray(), Serdes.ByteArray())
                                        .withStoreName("joined"))
                        .to(output, Produced.with(Serdes.String(), Serdes.Long()));
            }
            case "stream-table-join" -> {
                KTable<String, byte[]> table = counted.apply(source.apply(otherInput))
                        .toTable(Materialized.<String, byte[], KeyValueStore<Bytes, byte[]>>as("rows")
                                .withKeySerde(Serdes.String())
                                .withValueSerde(Serdes.ByteArray()));
                counted.apply(source.apply(input))
                        .join(table, (v, t) -> (long) (v.length + t.length))
                        .to(output, Produced.with(Serdes.String(), Serdes.Long()));
            }
            case "table-group-by" -> source.apply(input)
                    .toTable(Materialized.<String, byte[], KeyValueStore<Bytes, byte[]>>as("rows")
                            .withKeySerde(Serdes.String())
                            .withValueSerde(Serdes.ByteArray())
                            .withCachingDisabled())
                    .groupBy((k, v) -> KeyValue.pair(Integer.toString(v.length > 1 ? v[1] & 0xff : 0), v),
                            Grouped.with(Serdes.String(), Serdes.ByteArray()))
                    .aggregate(() -> 0L,
                            (g, v, n) -> {
                                seen.incrementAndGet();
                                return n + 1;
                            },
                            (g, v, n) -> n - 1,
                            Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("group-counts")
                                    .withKeySerde(Serdes.String())
                                    .withValueSerde(Serdes.Long()))
                    .toStream()
                    .to(output, Produced.with(Serdes.String(), Serdes.Long()));
            case "fk-join" -> {
                KTable<String, byte[]> other = source.apply(otherInput)
                        .toTable(Materialized.<String, byte[], KeyValueStore<Bytes, byte[]>>as("other-rows")
                                .withKeySerde(Serdes.String())
                                .withValueSerde(Serdes.ByteArray()));
                source.apply(input)
                        .toTable(Materialized.<String, byte[], KeyValueStore<Bytes, byte[]>>as("rows")
                                .withKeySerde(Serdes.String())
                                .withValueSerde(Serdes.ByteArray())
                                .withCachingDisabled())
                        .join(other,
                                KStreamsBench::foreignKey,
                                (v, o) -> {
                                    seen.incrementAndGet();
                                    return (long) (v.length + o.length);
                                },
                                Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("fk-joined")
                                        .withKeySerde(Serdes.String())
                                        .withValueSerde(Serdes.Long()))
                        .toStream()
                        .to(output, Produced.with(Serdes.String(), Serdes.Long()));
            }
            default -> throw new IllegalArgumentException("unknown workload " + workload);
        }

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch running = new CountDownLatch(1);
        AtomicLong restored = new AtomicLong();
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.RUNNING) {
                running.countDown();
                announce("ready");
            }
            if (now == KafkaStreams.State.ERROR) {
                System.err.println("kstreams-bench: streams in ERROR state");
                System.exit(2);
            }
        });
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String store, long start, long end) {}

            @Override
            public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {}

            @Override
            public void onRestoreEnd(TopicPartition tp, String store, long total) {
                restored.addAndGet(total);
            }
        });

        if (workload.equals("restore")) {
            announce("begin");
            streams.start();
            // RUNNING comes once every task has restored its stores.
            if (!running.await(600, TimeUnit.SECONDS)) {
                System.err.println("kstreams-bench: not RUNNING after 600 s");
                System.exit(3);
            }
            announce("end restored=" + restored.get());
            streams.close(Duration.ofSeconds(60));
            System.exit(0);
        }

        streams.start();
        while (seen.get() < records) {
            Thread.sleep(2);
        }
        streams.close(Duration.ofSeconds(120));
        announce("end processed=" + seen.get());
        System.exit(0);
    }

    /** The foreign key of an fk-join row, as streamtime-bench-app computes it. */
    private static String foreignKey(byte[] v) {
        int d = v.length > 0 ? Math.floorMod((v[0] & 0xff) - 'a', 256) % 10 : 0;
        return String.format("key-%07d", d);
    }

    /** Upper-cases ASCII in place, as the streamtime contender does with its owned value. */
    private static byte[] upper(byte[] v) {
        for (int i = 0; i < v.length; i++) {
            byte b = v[i];
            if (b >= 'a' && b <= 'z') {
                v[i] = (byte) (b - 32);
            }
        }
        return v;
    }

    private static synchronized void announce(String what) {
        System.out.println("bench-app: " + what);
        System.out.flush();
    }

    private static Map<String, String> parse(String[] argv) {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --name value, got " + argv[i]);
            }
            args.put(argv[i].substring(2), argv[i + 1]);
        }
        return args;
    }
}
