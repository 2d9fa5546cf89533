import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.ObjectWriter;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.Suppressed.BufferConfig;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The Kafka Streams peer of `bench/kafka-window.ts`: JSON records keyed by `country` → 1-minute
 * tumbling event-time windows with 5 s grace (Sluice's `maxOutOfOrder`) → count + exact sum of
 * `amount` in cents → final results only (`suppress(untilWindowCloses)`) → output topic, written
 * the way the Kafka Streams DSL is meant to be used: a Jackson value serde, event time from a
 * {@link TimestampExtractor}, `groupByKey` (the input is keyed by country, so no repartition), the
 * default RocksDB window store with its changelog, the default record cache.
 *
 * <p>End of input, as the other contenders: once no record was processed for 1 s, the windows
 * still open must be emitted too, but a Kafka Streams window closes only when stream time passes
 * its end + grace. So the job sources a second, empty topic of the same partition count (the
 * bench makes one per run; the shared input topic stays untouched) and writes one end marker with
 * an event time past every window's end + grace to each of its partitions: it lands in the same task as that input
 * partition, moves the task's stream time past every window, and is filtered out of the results.
 * Once every task has seen its marker, {@code close()} commits (and, under exactly_once_v2,
 * commits the transaction holding) the final windows.
 *
 * <p>Arguments: {@code --brokers --in --control --out --app --guarantee at_least_once|exactly_once_v2
 * --state-dir --stats FILE}. At exit it writes {@code {"cpuMs","hwmKiB","runningMs","firstRecordMs"}}
 * to the stats file: CPU time of the process (all threads), VmHWM, and the JVM uptime when the
 * instance reached RUNNING and when the first record was processed (start-up cost).
 */
public final class WindowJob {
  static final Duration WINDOW = Duration.ofMinutes(1);
  static final Duration GRACE = Duration.ofSeconds(5);
  static final long IDLE_MS = 1000;
  /** Key of the end markers; no country has it. */
  static final String END_KEY = "\u0000end";

  /** The fields of an input record the job reads; Jackson skips the others. */
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static final class Event {
    public String ts;
    public String country;
    public BigDecimal amount;
  }

  /** The running aggregate of one window: count and exact sum in cents. */
  static final class Agg {
    long count;
    long cents;

    Agg add(Event e) {
      count++;
      cents += e.amount.movePointRight(2).longValueExact();
      return this;
    }
  }

  /** A result as Sluice writes it: key field, window bounds (ISO-8601 UTC), aggregates. */
  public record Result(String country, String windowStart, String windowEnd, long count, String amount) {}

  /** Event time from the record's `ts` field (the value is already deserialized). */
  public static final class EventTime implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
      if (!(record.value() instanceof Event e)) return partitionTime;
      long t = Instant.parse(e.ts).toEpochMilli();
      if (t > maxEventMs) maxEventMs = t;
      return t;
    }
  }

  /**
   * Passes records on unchanged, noting when one was last processed, the highest input offset
   * processed per partition, and the end markers seen.
   */
  static final class Progress implements FixedKeyProcessor<String, Event, Event> {
    private final String input;
    private FixedKeyProcessorContext<String, Event> context;

    Progress(String input) {
      this.input = input;
    }

    @Override
    public void init(FixedKeyProcessorContext<String, Event> context) {
      this.context = context;
    }

    @Override
    public void process(FixedKeyRecord<String, Event> record) {
      long now = System.nanoTime();
      if (firstRecordMs < 0) firstRecordMs = ManagementFactory.getRuntimeMXBean().getUptime();
      RecordMetadata m = context.recordMetadata().orElseThrow();
      if (m.topic().equals(input)) {
        if (DEBUG && lastRecordNanos != 0 && now - lastRecordNanos > 300_000_000L)
          System.err.printf(
              "no record for %d ms before uptime %d ms (partition %d offset %d)%n",
              (now - lastRecordNanos) / 1_000_000,
              ManagementFactory.getRuntimeMXBean().getUptime(),
              m.partition(),
              m.offset());
        lastRecordNanos = now;
        processed.accumulateAndGet(m.partition(), m.offset(), Math::max);
      } else if (END_KEY.equals(record.key())) endsSeen.incrementAndGet();
      context.forward(record);
    }
  }

  static final ObjectMapper JSON = new ObjectMapper();
  static final ObjectReader EVENT_READER = JSON.readerFor(Event.class);
  static final ObjectWriter RESULT_WRITER = JSON.writerFor(Result.class);

  static Serde<Event> eventSerde() {
    return Serdes.serdeFrom(
        (topic, e) -> {
          throw new UnsupportedOperationException("events are only read");
        },
        (topic, bytes) -> {
          try {
            return bytes == null ? null : EVENT_READER.readValue(bytes);
          } catch (IOException e) {
            throw new SerializationException("reading an event", e);
          }
        });
  }

  static Serde<Agg> aggSerde() {
    return Serdes.serdeFrom(
        (topic, a) -> ByteBuffer.allocate(16).putLong(a.count).putLong(a.cents).array(),
        (topic, bytes) -> {
          if (bytes == null) return null;
          ByteBuffer b = ByteBuffer.wrap(bytes);
          Agg a = new Agg();
          a.count = b.getLong();
          a.cents = b.getLong();
          return a;
        });
  }

  /**
   * The window store: `memory` (an in-memory window store, as Sluice keeps its window state; still
   * backed by a changelog topic) or `rocksdb` (the DSL default: RocksDB segments of one minute of
   * event time here, so replaying hours of events opens and drops a RocksDB instance per minute and
   * task) or `rocksdb-1h` (RocksDB keeping an hour: segments of 30 minutes).
   */
  static Materialized<String, Agg, WindowStore<Bytes, byte[]>> windowStore(String kind) {
    return switch (kind) {
      case "memory" -> Materialized.as(Stores.inMemoryWindowStore("windows", WINDOW.plus(GRACE), WINDOW, false));
      case "rocksdb" -> Materialized.as("windows");
      case "rocksdb-1h" -> Materialized.<String, Agg, WindowStore<Bytes, byte[]>>as("windows").withRetention(Duration.ofHours(1));
      default -> throw new IllegalArgumentException("--store memory|rocksdb|rocksdb-1h, not " + kind);
    };
  }

  static String resultJson(Windowed<String> w, Agg a) {
    try {
      return RESULT_WRITER.writeValueAsString(
          new Result(
              w.key(),
              w.window().startTime().toString(),
              w.window().endTime().toString(),
              a.count,
              BigDecimal.valueOf(a.cents, 2).toPlainString()));
    } catch (IOException e) {
      throw new SerializationException("writing a result", e);
    }
  }

  static final boolean DEBUG = System.getenv("SLUICE_BENCH_KSTREAMS_DEBUG") != null;
  static volatile long lastRecordNanos = 0;
  /** The highest event time read (end markers go just past it: brokers refuse far-future timestamps). */
  static volatile long maxEventMs = Long.MIN_VALUE;
  static volatile long firstRecordMs = -1;
  static volatile long runningMs = -1;
  static volatile Throwable failure = null;
  static final AtomicInteger endsSeen = new AtomicInteger();
  /** Per input partition, the highest offset processed (-1: none yet). */
  static AtomicLongArray processed;

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = new HashMap<>();
    for (int i = 0; i + 1 < argv.length; i += 2) args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
    String brokers = args.get("brokers");
    String input = args.get("in");
    String control = args.get("control");
    long[] ends = endOffsets(brokers, input);
    processed = new AtomicLongArray(ends.length);
    for (int p = 0; p < ends.length; p++) processed.set(p, -1);

    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(
            List.of(input, control),
            Consumed.with(Serdes.String(), eventSerde()).withTimestampExtractor(new EventTime()))
        .processValues(() -> new Progress(input))
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW, GRACE))
        .aggregate(
            Agg::new,
            (key, e, a) -> a.add(e),
            windowStore(args.getOrDefault("store", "memory")).withValueSerde(aggSerde()))
        .suppress(Suppressed.untilWindowCloses(BufferConfig.unbounded()).withName("final"))
        .toStream()
        .filter((w, a) -> !END_KEY.equals(w.key()))
        .map((w, a) -> KeyValue.pair(w.key(), resultJson(w, a)))
        .to(args.get("out"), Produced.with(Serdes.String(), Serdes.String()));

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, args.get("app"));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args.get("guarantee"));
    // Commit (and under exactly_once_v2 end the transaction) every second, as Sluice checkpoints
    // and KafkaJS auto-commits in this bench; the defaults are 30 s and 100 ms.
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
    props.put(StreamsConfig.STATE_DIR_CONFIG, args.get("state-dir"));
    // A task reads an input partition and the (empty until the end) control partition: with the
    // default 0 it waits whenever it does not know the empty partition's lag, and stalled for
    // 0.5–5.8 s at a time here. -1 processes what is buffered; no synchronisation across the two
    // topics is wanted (the markers are written after the input is consumed).
    props.put(StreamsConfig.MAX_TASK_IDLE_MS_CONFIG, -1L);

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    streams.setStateListener(
        (now, before) -> {
          if (now == KafkaStreams.State.RUNNING && runningMs < 0)
            runningMs = ManagementFactory.getRuntimeMXBean().getUptime();
        });
    streams.setUncaughtExceptionHandler(
        e -> {
          failure = e;
          return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    streams.start();
    try {
      // The input is consumed once every partition was processed to its end (a task can pause
      // for seconds, e.g. while others start, so silence alone is not enough); then, like the
      // other contenders, 1 s without a record.
      while (!consumed(ends) || System.nanoTime() - lastRecordNanos < IDLE_MS * 1_000_000) {
        if (failure != null) throw new RuntimeException("the streams thread failed", failure);
        Thread.sleep(50);
      }
      int partitions = endMarkers(brokers, control);
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (endsSeen.get() < partitions) {
        if (failure != null) throw new RuntimeException("the streams thread failed", failure);
        if (System.nanoTime() > deadline) throw new IllegalStateException("the end markers were not all seen in 60 s");
        Thread.sleep(10);
      }
    } finally {
      if (!streams.close(Duration.ofSeconds(60))) failure = new IllegalStateException("close() timed out after 60 s");
      streams.cleanUp();
    }
    if (failure != null) throw new RuntimeException("the streams thread failed", failure);
    writeStats(args.get("stats"));
    System.exit(0);
  }

  /** The end offsets of `topic`'s partitions now (the bench's input topic is written before the run). */
  static long[] endOffsets(String brokers, String topic) throws Exception {
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers))) {
      int n = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
      Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
      for (int p = 0; p < n; p++) specs.put(new TopicPartition(topic, p), OffsetSpec.latest());
      var offsets = admin.listOffsets(specs).all().get();
      long[] ends = new long[n];
      for (int p = 0; p < n; p++) ends[p] = offsets.get(new TopicPartition(topic, p)).offset();
      return ends;
    }
  }

  static boolean consumed(long[] ends) {
    for (int p = 0; p < ends.length; p++) if (ends[p] > 0 && processed.get(p) < ends[p] - 1) return false;
    return true;
  }

  /** Writes one end marker to each partition of `control`; returns the partition count. */
  static int endMarkers(String brokers, String control) throws Exception {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    try (KafkaProducer<String, String> producer =
        new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
      int partitions = producer.partitionsFor(control).size();
      // Past the end + grace of every window read so far.
      Instant end = Instant.ofEpochMilli(maxEventMs).plus(WINDOW).plus(GRACE).plusMillis(1);
      String marker = "{\"ts\":\"" + end + "\",\"country\":\"\",\"amount\":\"0\"}";
      for (int i = 0; i < partitions; i++) producer.send(new ProducerRecord<>(control, i, END_KEY, marker)).get();
      return partitions;
    }
  }

  static void writeStats(String file) throws IOException {
    if (file == null) return;
    long cpuNs =
        ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
            .getProcessCpuTime();
    long hwm = -1;
    for (String line : Files.readAllLines(Path.of("/proc/self/status")))
      if (line.startsWith("VmHWM:")) hwm = Long.parseLong(line.replaceAll("[^0-9]", ""));
    Files.writeString(
        Path.of(file),
        String.format(
            "{\"cpuMs\":%d,\"hwmKiB\":%d,\"runningMs\":%d,\"firstRecordMs\":%d}",
            cpuNs / 1_000_000, hwm, runningMs, firstRecordMs));
  }
}
