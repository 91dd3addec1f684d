//! The realistic containers the benchmark and the profiling example hash, as the API server
//! serves them.

/// A typical application container with defaults filled in by the API server.
pub const APP: &str = concat!(
    r#"{"name":"checkout","image":"registry.example.com/shop/checkout:2.14.3","#,
    r#""command":["/app/checkout"],"args":["--config=/etc/checkout/config.yaml","#,
    r#""--log-level=info"],"ports":[{"name":"http","containerPort":8080,"protocol":"TCP"},"#,
    r#"{"name":"metrics","containerPort":9090,"protocol":"TCP"}],"env":[{"name":"POD_NAME","#,
    r#""valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}},"#,
    r#"{"name":"POD_NAMESPACE","valueFrom":{"fieldRef":{"apiVersion":"v1","#,
    r#""fieldPath":"metadata.namespace"}}},{"name":"GOMAXPROCS","#,
    r#""valueFrom":{"resourceFieldRef":{"containerName":"checkout","resource":"limits.cpu","#,
    r#""divisor":"1"}}},{"name":"DB_PASSWORD","#,
    r#""valueFrom":{"secretKeyRef":{"name":"checkout-db","key":"password"}}},{"name":"REGION","#,
    r#""value":"eu-west-1"},{"name":"FEATURE_FLAGS","value":"a,b,c"}],"#,
    r#""resources":{"limits":{"cpu":"2","memory":"1Gi"},"requests":{"cpu":"500m","#,
    r#""memory":"512Mi"}},"volumeMounts":[{"name":"config","readOnly":true,"#,
    r#""mountPath":"/etc/checkout"},{"name":"kube-api-access-x7k2p","readOnly":true,"#,
    r#""mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],"#,
    r#""livenessProbe":{"httpGet":{"path":"/healthz","port":"http","scheme":"HTTP"},"#,
    r#""initialDelaySeconds":10,"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"#,
    r#""failureThreshold":3},"readinessProbe":{"httpGet":{"path":"/ready","port":8080,"#,
    r#""scheme":"HTTP"},"timeoutSeconds":1,"periodSeconds":5,"successThreshold":1,"#,
    r#""failureThreshold":3},"lifecycle":{"preStop":{"exec":{"command":["/bin/sh","-c","#,
    r#""sleep 5"]}}},"terminationMessagePath":"/dev/termination-log","#,
    r#""terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent","#,
    r#""securityContext":{"capabilities":{"drop":["ALL"]},"runAsUser":10001,"#,
    r#""runAsNonRoot":true,"readOnlyRootFilesystem":true,"allowPrivilegeEscalation":false,"#,
    r#""seccompProfile":{"type":"RuntimeDefault"}}}"#,
);

/// A typical web container: one port, requests and limits, the injected token mount.
pub const TYPICAL: &str = concat!(
    r#"{"name":"web","image":"nginx:1.25.4","ports":[{"containerPort":80,"protocol":"TCP"}],"#,
    r#""resources":{"limits":{"memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},"#,
    r#""volumeMounts":[{"name":"kube-api-access-4xk9z","readOnly":true,"#,
    r#""mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],"#,
    r#""terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","#,
    r#""imagePullPolicy":"IfNotPresent"}"#,
);

/// A small sidecar.
pub const SIDECAR: &str = concat!(
    r#"{"name":"log-shipper","image":"fluent/fluent-bit:3.0.4","#,
    r#""resources":{"limits":{"memory":"128Mi"},"requests":{"cpu":"50m","memory":"64Mi"}},"#,
    r#""volumeMounts":[{"name":"varlog","mountPath":"/var/log"}],"#,
    r#""terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","#,
    r#""imagePullPolicy":"IfNotPresent","restartPolicy":"Always"}"#,
);
