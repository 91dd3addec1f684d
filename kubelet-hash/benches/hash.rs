//! Container hashes per second on realistic containers as the API server serves them (target:
//! ≥ 100,000 per second on one core).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark harness"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kubelet_hash::{HashOptions, KubeletVersion, hash, predict};

/// A typical application container with defaults filled in by the API server.
const APP: &str = r#"{"name":"checkout","image":"registry.example.com/shop/checkout:2.14.3","command":["/app/checkout"],"args":["--config=/etc/checkout/config.yaml","--log-level=info"],"ports":[{"name":"http","containerPort":8080,"protocol":"TCP"},{"name":"metrics","containerPort":9090,"protocol":"TCP"}],"env":[{"name":"POD_NAME","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}},{"name":"POD_NAMESPACE","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}},{"name":"GOMAXPROCS","valueFrom":{"resourceFieldRef":{"containerName":"checkout","resource":"limits.cpu","divisor":"1"}}},{"name":"DB_PASSWORD","valueFrom":{"secretKeyRef":{"name":"checkout-db","key":"password"}}},{"name":"REGION","value":"eu-west-1"},{"name":"FEATURE_FLAGS","value":"a,b,c"}],"resources":{"limits":{"cpu":"2","memory":"1Gi"},"requests":{"cpu":"500m","memory":"512Mi"}},"volumeMounts":[{"name":"config","readOnly":true,"mountPath":"/etc/checkout"},{"name":"kube-api-access-x7k2p","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],"livenessProbe":{"httpGet":{"path":"/healthz","port":"http","scheme":"HTTP"},"initialDelaySeconds":10,"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},"readinessProbe":{"httpGet":{"path":"/ready","port":8080,"scheme":"HTTP"},"timeoutSeconds":1,"periodSeconds":5,"successThreshold":1,"failureThreshold":3},"lifecycle":{"preStop":{"exec":{"command":["/bin/sh","-c","sleep 5"]}}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent","securityContext":{"capabilities":{"drop":["ALL"]},"runAsUser":10001,"runAsNonRoot":true,"readOnlyRootFilesystem":true,"allowPrivilegeEscalation":false,"seccompProfile":{"type":"RuntimeDefault"}}}"#;

/// A typical web container: one port, requests and limits, the injected token mount.
const TYPICAL: &str = r#"{"name":"web","image":"nginx:1.25.4","ports":[{"containerPort":80,"protocol":"TCP"}],"resources":{"limits":{"memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},"volumeMounts":[{"name":"kube-api-access-4xk9z","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}"#;

/// A small sidecar.
const SIDECAR: &str = r#"{"name":"log-shipper","image":"fluent/fluent-bit:3.0.4","resources":{"limits":{"memory":"128Mi"},"requests":{"cpu":"50m","memory":"64Mi"}},"volumeMounts":[{"name":"varlog","mountPath":"/var/log"}],"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent","restartPolicy":"Always"}"#;

fn hashes(c: &mut Criterion) {
    let options = HashOptions::default();
    let mut group = c.benchmark_group("hash");
    group.throughput(Throughput::Elements(1));
    for (label, kubelet) in [
        ("app_v1.30", "v1.30.2"),
        ("app_v1.24", "v1.24.17"),
        ("app_v1.31", "v1.31.2"),
    ] {
        let kubelet: KubeletVersion = kubelet.parse().unwrap();
        group.bench_function(label, |b| b.iter(|| hash(APP, &kubelet, &options).unwrap()));
    }
    let kubelet: KubeletVersion = "v1.30.2".parse().unwrap();
    group.bench_function("typical_v1.30", |b| {
        b.iter(|| hash(TYPICAL, &kubelet, &options).unwrap());
    });
    group.bench_function("sidecar_v1.30", |b| {
        b.iter(|| hash(SIDECAR, &kubelet, &options).unwrap());
    });
    group.finish();

    let pod = format!(r#"{{"spec":{{"initContainers":[{SIDECAR}],"containers":[{APP},{APP}]}}}}"#);
    let (from, to) = ("v1.30.6".parse().unwrap(), "v1.31.2".parse().unwrap());
    let mut group = c.benchmark_group("predict");
    group.throughput(Throughput::Elements(3));
    group.bench_function("pod_of_3", |b| {
        b.iter(|| predict(&pod, &from, &to, None).unwrap());
    });
    group.finish();
}

criterion_group!(benches, hashes);
criterion_main!(benches);
