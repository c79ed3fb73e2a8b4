//! The Qdrant stand-in answers the real client as Qdrant does, errors included.

use garonne_tests::qdrant_standin::QdrantStandin;
use qdrant_client::Qdrant;
use qdrant_client::qdrant::{
    Condition, CreateCollectionBuilder, Distance, Filter, PointStruct, QueryPointsBuilder,
    UpsertPointsBuilder, VectorParamsBuilder,
};

fn client(standin: &QdrantStandin) -> Qdrant {
    Qdrant::from_url(&standin.url)
        .skip_compatibility_check()
        .build()
        .unwrap()
}

fn status_of(error: qdrant_client::QdrantError) -> tonic::Status {
    match error {
        qdrant_client::QdrantError::ResponseError { status } => status,
        other => panic!("expected a gRPC status, got {other}"),
    }
}

#[test]
fn behaves_like_qdrant_for_the_calls_the_collector_makes() {
    let standin = QdrantStandin::start().unwrap();
    let client = client(&standin);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        assert!(
            client
                .health_check()
                .await
                .unwrap()
                .version
                .starts_with("1.20")
        );
        assert!(!client.collection_exists("logs").await.unwrap());

        let missing = status_of(
            client
                .upsert_points(UpsertPointsBuilder::new(
                    "logs",
                    vec![PointStruct::new(
                        1,
                        vec![1.0, 0.0],
                        [("kind", "template".into())],
                    )],
                ))
                .await
                .unwrap_err(),
        );
        assert_eq!(missing.code(), tonic::Code::NotFound);
        assert!(
            missing
                .message()
                .contains("Collection `logs` doesn't exist!")
        );

        let create = || {
            CreateCollectionBuilder::new("logs")
                .vectors_config(VectorParamsBuilder::new(2, Distance::Cosine))
        };
        client.create_collection(create()).await.unwrap();
        let taken = status_of(client.create_collection(create()).await.unwrap_err());
        assert_eq!(taken.code(), tonic::Code::InvalidArgument);
        assert!(taken.message().contains("already exists"));

        let wrong = status_of(
            client
                .upsert_points(UpsertPointsBuilder::new(
                    "logs",
                    vec![PointStruct::new(
                        1,
                        vec![1.0, 0.0, 0.0],
                        [("kind", "template".into())],
                    )],
                ))
                .await
                .unwrap_err(),
        );
        assert_eq!(wrong.code(), tonic::Code::InvalidArgument);
        assert!(
            wrong
                .message()
                .contains("Vector dimension error: expected dim: 2, got 3"),
            "{}",
            wrong.message()
        );

        let points = vec![
            PointStruct::new(1, vec![2.0, 0.0], [("kind", "template".into())]),
            PointStruct::new(2, vec![0.0, 1.0], [("kind", "template".into())]),
            PointStruct::new(3, vec![1.0, 0.1], [("kind", "event".into())]),
        ];
        client
            .upsert_points(UpsertPointsBuilder::new("logs", points).wait(true))
            .await
            .unwrap();
        let found = client
            .query(
                QueryPointsBuilder::new("logs")
                    .query(vec![1.0, 0.2])
                    .limit(2)
                    .with_payload(true)
                    .filter(Filter::must([Condition::matches(
                        "kind",
                        "template".to_string(),
                    )])),
            )
            .await
            .unwrap();
        let ids: Vec<String> = found
            .result
            .iter()
            .map(|point| format!("{:?}", point.id.clone().unwrap().point_id_options.unwrap()))
            .collect();
        assert_eq!(ids, ["Num(1)", "Num(2)"]);
        let best = &found.result[0];
        assert!(
            (best.score - 0.9806).abs() < 1e-3,
            "cosine score: {}",
            best.score
        );
        assert_eq!(best.payload["kind"].clone().into_json(), "template");

        let bad_query = status_of(
            client
                .query(QueryPointsBuilder::new("logs").query(vec![1.0, 0.0, 0.0]))
                .await
                .unwrap_err(),
        );
        assert_eq!(bad_query.code(), tonic::Code::InvalidArgument);
        let info = client.collection_info("logs").await.unwrap();
        assert_eq!(info.result.unwrap().points_count, Some(3));
    });
}
