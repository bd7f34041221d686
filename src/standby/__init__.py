"""standby: JobManager high availability after Apache Flink, in Python."""
