/*
 * Benchmark job for the Flink side of the `standby` JobManager-failover benchmark.
 *
 * A throttled, effectively unbounded generator (DataGeneratorSource, checkpointed split state) feeds a keyed,
 * stateful running sum (ValueState per key) into a discarding sink. Checkpointing runs every CHECKPOINT_MS, so a
 * JobManager failover has to restore the job from the latest completed checkpoint in the HA store and then
 * complete a fresh checkpoint; the harness measures both. The source is rate-limited so that the job does not
 * compete with the JobManagers for CPU on a small machine.
 *
 * Built by benchmarks/flink/run_flink_failover.py with `javac` against the distribution's lib/ jars; nothing here
 * is committed in binary form.
 *
 * Arguments (all optional): --checkpoint-ms N (default 300), --parallelism N (default 2),
 * --rate N records/s in total (default 2000).
 */
package standby.bench;

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

public final class CheckpointingJob {

    private CheckpointingJob() {}

    /** Keyed running sum; its ValueState is what each checkpoint snapshots and each failover restores. */
    public static final class RunningSum
            extends KeyedProcessFunction<Integer, Tuple2<Integer, Long>, Tuple2<Integer, Long>> {
        private static final long serialVersionUID = 1L;
        private transient ValueState<Long> sum;

        @Override
        public void open(org.apache.flink.api.common.functions.OpenContext ctx) {
            sum = getRuntimeContext().getState(new ValueStateDescriptor<>("sum", Types.LONG));
        }

        @Override
        public void processElement(
                Tuple2<Integer, Long> value, Context ctx, Collector<Tuple2<Integer, Long>> out)
                throws Exception {
            Long current = sum.value();
            long next = (current == null ? 0L : current) + value.f1;
            sum.update(next);
            out.collect(Tuple2.of(value.f0, next));
        }
    }

    private static long argLong(String[] args, String name, long dflt) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(name)) {
                return Long.parseLong(args[i + 1]);
            }
        }
        return dflt;
    }

    public static void main(String[] args) throws Exception {
        long checkpointMs = argLong(args, "--checkpoint-ms", 300L);
        int parallelism = (int) argLong(args, "--parallelism", 2L);
        double rate = (double) argLong(args, "--rate", 2000L);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(new Configuration());
        env.setRuntimeMode(RuntimeExecutionMode.STREAMING);
        env.setParallelism(parallelism);
        env.enableCheckpointing(checkpointMs, CheckpointingMode.EXACTLY_ONCE);

        GeneratorFunction<Long, Tuple2<Integer, Long>> gen = i -> Tuple2.of((int) (i % 16), i);
        // Long.MAX_VALUE records at `rate`/s: runs until cancelled.
        DataGeneratorSource<Tuple2<Integer, Long>> source = new DataGeneratorSource<>(
                gen, Long.MAX_VALUE, RateLimiterStrategy.perSecond(rate),
                Types.TUPLE(Types.INT, Types.LONG));

        env.fromSource(source, WatermarkStrategy.noWatermarks(), "generator")
                .keyBy(t -> t.f0, Types.INT)
                .process(new RunningSum())
                .returns(Types.TUPLE(Types.INT, Types.LONG))
                .name("running-sum")
                .sinkTo(new DiscardingSink<>())
                .name("discard");

        env.execute("standby-bench-checkpointing-job");
    }
}
